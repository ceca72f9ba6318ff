%%% @doc Where ewpcap_dump's packets go: text lines on standard output
%%% (ewpcap_dump_fmt's, a batch written at once) or a pcap savefile
%%% (ewpcap_pcap_file, `-w').
%%%
%%% Errors come back as `{error, Text}' for ewpcap_dump to print; a
%%% closed output (standard output or the pipe gone: `| head') is
%%% `{closed, Out}', which ends a capture as the count would.
%%% @end
-module(ewpcap_dump_out).

-include("ewpcap_dump.hrl").

-export([open/4, emit/3, close/1, resolved/3]).

-export_type([out/0]).

-type out() :: {text, ewpcap_dump_fmt:printer()} | {file, ewpcap_pcap_file:writer()}.
%% The output of a run.

%% @doc The output the flags ask for: a printer (names looked up `sync'
%% or `async', see ewpcap_dump_names), or the savefile of `-w', its
%% global header written at once (a capture ended before its first
%% packet leaves a valid savefile).
-spec open(#opts{}, non_neg_integer(), pos_integer(), sync | async) ->
    {ok, out()} | {error, string()}.
open(#opts{write = undefined} = O, _Dlt, _Snaplen, Mode) ->
    Hex = case {O#opts.xflag_ascii, O#opts.xflag} of
              {0, 0} -> none;
              {0, 1} -> x;
              {0, _} -> xx;
              {1, _} -> 'X';
              {_, _} -> 'XX'
          end,
    {ok, {text, ewpcap_dump_fmt:new_printer(O#opts.numeric, Mode,
                                            #{verbose => O#opts.verbose,
                                              absolute => O#opts.absolute,
                                              eflag => O#opts.eflag, hex => Hex})}};
open(#opts{write = Name, unbuffered = U}, Dlt, Snaplen, _Mode) ->
    case ewpcap_pcap_file:open_write(Name, #{unbuffered => U, snaplen => Snaplen, dlt => Dlt}) of
        {ok, W} -> {ok, {file, W}};
        {error, Reason} -> {error, ewpcap_pcap_file:format_error(Reason)}
    end.

%% @doc Prints or writes a batch of packets of link type `Dlt'.
-spec emit(non_neg_integer(), [ewpcap_pcap_file:packet()], out()) ->
    {ok | closed, out()} | {error, string()}.
emit(Dlt, Batch, {text, P}) ->
    {Lines, P1} = lines(Dlt, Batch, P, []),
    % one binary: the io server gets a reference, not a deep list to copy
    case catch io:put_chars(standard_io, iolist_to_binary(Lines)) of
        ok -> {ok, {text, P1}};
        _ -> {closed, {text, P1}}
    end;
emit(Dlt, Batch, {file, W}) ->
    case ewpcap_pcap_file:write(W, Dlt, Batch) of
        {ok, W1} -> {ok, {file, W1}};
        {error, {_, closed}, W1} -> {closed, {file, W1}};
        {error, Reason, _} -> {error, ewpcap_pcap_file:format_error(Reason)}
    end.

%% @doc Flushes and closes a savefile.
-spec close(out()) -> ok.
close({text, _}) ->
    ok;
close({file, W}) ->
    _ = ewpcap_pcap_file:close_write(W),
    ok.

%% @doc A name looked up in the background, for the lines to come.
-spec resolved(inet:ip_address(), string(), out()) -> out().
resolved(IP, Name, {text, P}) ->
    {text, ewpcap_dump_fmt:resolved(IP, Name, P)};
resolved(_IP, _Name, Out) ->
    Out.

lines(_Dlt, [], P, Acc) ->
    {Acc, P};
lines(Dlt, [Rec | Batch], P, Acc) ->
    {Line, P1} = ewpcap_dump_fmt:format_packet(Dlt, Rec, P, line),
    lines(Dlt, Batch, P1, [Acc, Line, $\n]).
