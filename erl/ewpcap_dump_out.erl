%%% @doc ewpcap_dump's output: text lines on standard output (a batch
%%% written at once, as one binary), a pcap savefile (ewpcap_pcap_file)
%%% or a pcapng file (ewpcap_pcapng) for `-w'.
%%%
%%% The file format: pcapng with `--pcapng' or a name ending in `.pcapng',
%%% else pcap. The precision (`--time-stamp-precision', `--nano'): pcap
%%% files get the nanosecond magic `0xa1b23c4d', pcapng interfaces
%%% `if_tsresol' 9; text lines show 6 or 9 digits, as tcpdump. A pcapng
%%% file describes the capture's interface (`if_name' `Node:Device',
%%% `if_description', `if_filter', `if_os', `if_tsresol') and ends with
%%% its statistics (`isb_ifrecv', `isb_ifdrop' = kernel and interface
%%% drops, `isb_usrdeliv' = packets written) when they are known.
%%%
%%% Errors are thrown as ewpcap_dump handles them: `{fatal, Text}' (exit
%%% status 1), `{output_closed, Out}' (standard output or the pipe
%%% closed: the run ends quietly).
%%% @end
-module(ewpcap_dump_out).

-include("ewpcap_dump.hrl").

-export([open/4, emit/3, emit/4, close/2, format/1, resolved/3, interface/4]).

-export_type([out/0, source/0]).

-opaque out() :: {text, ewpcap_dump_fmt:printer(), micro | nano}
               | {pcap, ewpcap_pcap_file:writer()}
               | {pcapng, ewpcap_pcapng:writer(), non_neg_integer()}.
%% Where the packets go.

-type source() :: #{node => node(), device => string(), filter => binary(),
                    description => string()}.
%% What is captured, for the pcapng interface description.

%% @doc The output of a run: text (`Mode' `async' for live captures, whose
%% names are looked up in the background, `sync' when reading a file) or
%% the `-w' file, its header written at once.
-spec open(#opts{}, {non_neg_integer() | undefined, pos_integer()}, source(), async | sync) -> out().
open(#opts{write = undefined} = O, _Link, _Source, Mode) ->
    Hex = case {O#opts.xflag_ascii, O#opts.xflag} of
              {0, 0} -> none;
              {0, 1} -> x;
              {0, _} -> xx;
              {1, _} -> 'X';
              {_, _} -> 'XX'
          end,
    {text, ewpcap_dump_fmt:new_printer(O#opts.numeric, Mode,
                                       #{verbose => O#opts.verbose, absolute => O#opts.absolute,
                                         eflag => O#opts.eflag, hex => Hex,
                                         precision => O#opts.precision}),
     O#opts.precision};
open(#opts{write = Name, unbuffered = U, precision = P} = O, {Dlt, Snaplen}, Source, _Mode) ->
    case format(O) of
        pcap ->
            % the global header is written at once when the link type is
            % known: a capture ended before its first packet leaves a
            % valid savefile
            case ewpcap_pcap_file:open_write(Name, #{unbuffered => U, snaplen => Snaplen,
                                                     dlt => Dlt, precision => P}) of
                {ok, W} -> {pcap, W};
                {error, Reason} -> fatal(Reason)
            end;
        pcapng ->
            _ = application:load(ewpcap),
            Vsn = case application:get_key(ewpcap, vsn) of
                      {ok, V} -> V;
                      undefined -> "unknown"
                  end,
            W = case ewpcap_pcapng:open_write(Name, #{unbuffered => U,
                                                      userappl => ?PROG " (ewpcap " ++ Vsn ++ ")"}) of
                    {ok, W0} -> W0;
                    {error, Reason} -> fatal(Reason)
                end,
            If = interface(Source, Dlt, Snaplen, P),
            case ewpcap_pcapng:add_interface(W, If) of
                {ok, Id, W1} ->
                    {pcapng, W1, Id};
                {error, IfReason, W1} ->
                    _ = ewpcap_pcapng:close_write(W1),
                    fatal(IfReason)
            end
    end.

%% @doc pcapng or pcap, as `-w' writes.
-spec format(#opts{}) -> pcap | pcapng.
format(#opts{pcapng = true}) ->
    pcapng;
format(#opts{write = Name}) ->
    case string:lowercase(filename:extension(Name)) of
        ".pcapng" -> pcapng;
        _ -> pcap
    end.

%% @doc Writes or prints packets of link type `Dlt'.
-spec emit(non_neg_integer(), [ewpcap_pcap_file:packet()], out()) -> out().
emit(Dlt, Batch, Out) ->
    emit(Dlt, Batch, Out, <<>>).

%% @doc As emit/3, each text line after `Prefix' (ewpcap_dump_multi: the
%% interface).
-spec emit(non_neg_integer(), [ewpcap_pcap_file:packet()], out(), binary()) -> out().
emit(Dlt, Batch, {text, P, Precision}, Prefix) ->
    % the printer prints the times in the batch's unit (Precision)
    {Lines, P1} = lines(Dlt, Batch, P, Prefix, []),
    % one binary: the io server gets a reference, not a deep list to copy
    case catch io:put_chars(standard_io, iolist_to_binary(Lines)) of
        ok -> {text, P1, Precision};
        _ -> throw({output_closed, {text, P1, Precision}})
    end;
emit(Dlt, Batch, {pcap, W}, _) ->
    case ewpcap_pcap_file:write(W, Dlt, Batch) of
        {ok, W1} -> {pcap, W1};
        {error, {_, closed}, W1} -> throw({output_closed, {pcap, W1}});
        {error, Reason, _} -> fatal(Reason)
    end;
emit(_Dlt, Batch, {pcapng, W, Id}, _) ->
    case ewpcap_pcapng:write(W, Id, Batch) of
        {ok, W1} -> {pcapng, W1, Id};
        {error, {_, closed}, W1} -> throw({output_closed, {pcapng, W1, Id}});
        {error, Reason, _} -> fatal(Reason)
    end.

%% @doc A name looked up in the background, for the text lines (live
%% captures print the address until it is known).
-spec resolved(inet:ip_address(), string(), out()) -> out().
resolved(IP, Name, {text, P, Precision}) ->
    {text, ewpcap_dump_fmt:resolved(IP, Name, P), Precision};
resolved(_IP, _Name, Out) ->
    Out.

%% @doc Writes out and closes the file; a pcapng file gets the counts
%% (`undefined': none known) in an Interface Statistics Block.
-spec close(out(), ewpcap_pcapng:stats() | undefined) -> ok.
close({text, _, _}, _Stats) ->
    ok;
close({pcap, W}, _Stats) ->
    case ewpcap_pcap_file:close_write(W) of
        ok -> ok;
        {error, {_, closed}} -> ok;
        {error, Reason} -> fatal(Reason)
    end;
close({pcapng, W, Id}, Stats) ->
    case ewpcap_pcapng:close_write(W, [{Id, Stats} || Stats =/= undefined]) of
        ok -> ok;
        {error, {_, closed}} -> ok;
        {error, Reason} -> fatal(Reason)
    end.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

lines(_Dlt, [], P, _Prefix, Acc) ->
    {Acc, P};
lines(Dlt, [Rec | Batch], P, Prefix, Acc) ->
    {Line, P1} = ewpcap_dump_fmt:format_packet(Dlt, Rec, P, line),
    lines(Dlt, Batch, P1, Prefix, [Acc, prefix(Prefix, Line), $\n]).

%% @doc The pcapng interface of a source (ewpcap_dump_multi writes
%% several).
-spec interface(source(), non_neg_integer() | undefined, pos_integer(), micro | nano) ->
    ewpcap_pcapng:interface().
interface(Source, Dlt, Snaplen, Precision) ->
    #{linktype => ewpcap_pcap_file:linktype(case Dlt of undefined -> 1; _ -> Dlt end),
      snaplen => Snaplen,
      name => case Source of
                  #{node := Node, device := Dev} -> [atom_to_list(Node), $:, Dev];
                  _ -> <<>>
              end,
      description => maps:get(description, Source, <<>>),
      filter => maps:get(filter, Source, <<>>),
      % ewpcapd runs on Linux only (openat2, network namespaces)
      os => case Source of #{node := _} -> <<"Linux">>; _ -> <<>> end,
      tsresol => case Precision of micro -> 6; nano -> 9 end}.

prefix(<<>>, Line) ->
    Line;
prefix(Prefix, Line) ->
    [Prefix, lists:join([$\n, Prefix], binary:split(iolist_to_binary(Line), <<"\n">>, [global]))].

-spec fatal(ewpcap_pcap_file:reason()) -> no_return().
fatal(Reason) ->
    throw({fatal, ewpcap_pcap_file:format_error(Reason)}).
