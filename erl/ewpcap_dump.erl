%%% @doc ewpcap_dump: a tcpdump-like command line tool on top of ewpcap.
%%%
%%% This module is the main module of the escript `bin/ewpcap_dump' built
%%% by `make' (see `ewpcap_dump(1)' for the user's documentation): it runs
%%% the command line and exits with its status. It captures through an
%%% ewpcapd, the embedded one by default or the one named with `-N', and
%%% prints one line per packet, or writes a pcap savefile (`-w'); it also
%%% reads savefiles (`-r'). A filter given with `-r' needs pcap's
%%% compiler, so the file is then read by the daemon
%%% (`ewpcap:open({file, Path}, Options)').
%%%
%%% The other jobs are in their own modules: ewpcap_dump_args (flags,
%%% usage), ewpcap_dist (epmd, distribution), ewpcap_dump_out (text, or
%%% the `-w' file: pcap by ewpcap_pcap_file, pcapng by ewpcap_pcapng),
%%% ewpcap_pcap_file (reading savefiles, pcapng too), ewpcap_dump_fmt (the
%%% lines, `-D'), ewpcap_dump_dlt (link-type names), ewpcap_dump_names
%%% (name caches, reverse DNS off the packet path) and ewpcap_dump_multi
%%% (several `-i': merged captures).
%%%
%%% Ctrl-C: OTP 25 cannot handle SIGINT in Erlang (os:set_signal/2 refuses
%%% it). The escript's second line is a one-line sh wrapper (its shebang
%%% is `/bin/sh'; escript sees that line as a comment): it runs the escript
%%% with `+Bi' (SIGINT ignored by the emulator) and turns SIGINT into
%%% SIGTERM, which this module handles through `erl_signal_server' (it is
%%% also a gen_event handler for that purpose).
%%% @end
-module(ewpcap_dump).

-behaviour(gen_event).

-include("ewpcap.hrl").
-include("ewpcap_dump.hrl").

-export([main/1]).
% for ewpcap_extcap and ewpcap_dump_multi
-export([daemon/1, open_live/4, handle_info/3, install_signals/0, resolve/1,
         dev_description/2, daemon_drops/2]).
-export([init/1, handle_event/2, handle_call/2, handle_info/2, terminate/2]).

-define(BATCH, 256).
-define(STATUS_MS, 500).

%% The capture loop.
-record(loop, {
    ref :: reference(),                              % of the handle
    left :: non_neg_integer() | infinity,            % -c
    captured = 0 :: non_neg_integer(),
    bytes = 0 :: non_neg_integer(),
    out :: ewpcap_dump_out:out(),
    status :: {ewpcap:socket(), integer()} | undefined, % the live count
    eof :: undefined | eof | signal | closed | {error, term()}
}).

%%% ===================================================================
%%% escript entry point
%%% ===================================================================

%% @doc The escript's entry point: runs and halts with 0 (done), 1
%% (runtime error) or 2 (bad flags or filter).
-spec main([string()]) -> no_return().
main(Args) ->
    % ewpcap_daemon reports the daemon's output and the distribution's
    % start (with a supervisor report when a name type is refused) through
    % logger: not for a command line tool, which says what went wrong
    % itself. -vv shows them.
    ok = logger:set_primary_config(level, none),
    Status =
        try
            O = ewpcap_dump_args:parse_args(Args),
            O#opts.verbose >= 2 andalso logger:set_primary_config(level, notice),
            run(O)
        catch
            error:terminated ->
                % standard output closed (`ewpcap_dump -D | head -1')
                0;
            throw:{usage, Msg} ->
                err("~ts", [Msg]),
                2;
            throw:{fatal, Msg} ->
                err("~ts", [Msg]),
                1;
            Class:Reason:Stack ->
                err("internal error: ~tp", [{Class, Reason, Stack}]),
                1
        end,
    erlang:halt(Status).

-spec fatal(io:format(), [term()]) -> no_return().
fatal(Fmt, Args) ->
    throw({fatal, io_lib:format(Fmt, Args)}).

-spec usage(io:format(), [term()]) -> no_return().
usage(Fmt, Args) ->
    ewpcap_dump_args:usage(Fmt, Args).

%%% ===================================================================
%%% Running
%%% ===================================================================

run(#opts{help = true}) ->
    io:put_chars(ewpcap_dump_args:usage_text()),
    0;
run(#opts{version = true}) ->
    _ = application:load(ewpcap),
    Vsn = case application:get_key(ewpcap, vsn) of
              {ok, V} -> V;
              undefined -> "unknown"
          end,
    io:format(?PROG " ~s (ewpcap)~n", [Vsn]),
    0;
run(#opts{list = true} = O) ->
    Node = daemon(O),
    case ewpcap:getifaddrs(Node) of
        {ok, Ifs} ->
            io:put_chars(ewpcap_dump_ifaddrs:format_ifaddrs(Ifs)),
            0;
        {error, Reason} ->
            fatal("getifaddrs: ~ts", [reason(Reason)])
    end;
run(#opts{read = File, filter = <<>>} = O) when File =/= undefined ->
    read_file(O);
run(#opts{read = File} = O) when File =/= undefined ->
    read_file_filtered(O);
run(#opts{ifaces = [_, _ | _]} = O) -> ewpcap_dump_multi:capture(O);
run(O) -> capture(O).

%%% -------------------------------------------------------------------
%%% The daemon: distribution, cookie, embedded ewpcapd
%%% -------------------------------------------------------------------

daemon(#opts{node = undefined, cookie = Cookie}) ->
    setup_app(),
    Cookie =:= undefined orelse start_distribution(shortnames, Cookie),
    try
        ewpcap:daemon_node()
    catch
        error:{ewpcapd, {enoent, Path}} ->
            fatal("ewpcapd not found (~ts); set EWPCAPD to its path", [Path]);
        error:Reason ->
            fatal("cannot start ewpcapd: ~tp", [Reason])
    end;
daemon(#opts{node = Node, cookie = Cookie}) ->
    setup_app(),
    [_, Host] = string:split(atom_to_list(Node), "@"),
    Names =
        case lists:member($., Host) orelse lists:member($:, Host) of % ':': IPv6
            true -> longnames;
            false -> shortnames
        end,
    start_distribution(Names, undefined),
    Cookie =:= undefined orelse erlang:set_cookie(Node, Cookie),
    case net_adm:ping(Node) of
        pong -> Node;
        pang -> fatal("cannot reach ~ts (not running, or another cookie?)", [Node])
    end.

setup_app() ->
    _ = application:load(ewpcap),
    case ewpcapd_path() of
        false -> ok;
        Path -> application:set_env(ewpcap, ewpcapd, Path)
    end.

%% The daemon executable: $EWPCAPD, else next to the escript (in the
%% source tree, bin/../priv; installed, bin/../lib/erlang/lib/ewpcap-*/priv),
%% else the application's priv directory (the default of ewpcap_daemon).
ewpcapd_path() ->
    Env = case os:getenv("EWPCAPD") of
              false -> [];
              "" -> [];
              P -> [P]
          end,
    Script =
        try escript:script_name() of
            S -> [filename:dirname(resolve(filename:absname(S)))]
        catch
            _:_ -> []
        end,
    Near = lists:append(
             [[filename:join([D, "..", "priv", "ewpcapd"])
               | lists:reverse(lists:sort(filelib:wildcard(
                   filename:join([D, "..", "lib", "erlang", "lib", "ewpcap-*", "priv", "ewpcapd"]))))]
              || D <- Script]),
    case Env of
        [Path] -> Path;
        [] ->
            case [F || F <- Near, filelib:is_regular(F)] of
                [F | _] -> normalize(F);
                [] -> false
            end
    end.

%% Follows symbolic links of the escript itself (a link in /usr/bin to
%% an installed ewpcap_dump).
resolve(Path) ->
    resolve(Path, 10).

resolve(Path, 0) ->
    Path;
resolve(Path, N) ->
    case file:read_link(Path) of
        {ok, Target} ->
            resolve(filename:absname(Target, filename:dirname(Path)), N - 1);
        {error, _} ->
            Path
    end.

normalize(Path) ->
    filename:join(normalize_parts(filename:split(Path), [])).

normalize_parts([], Acc) -> lists:reverse(Acc);
normalize_parts(["." | T], Acc) -> normalize_parts(T, Acc);
normalize_parts([".." | T], [Root]) -> normalize_parts(T, [Root]);
normalize_parts([".." | T], [_ | Acc]) -> normalize_parts(T, Acc);
normalize_parts([H | T], Acc) -> normalize_parts(T, [H | Acc]).

start_distribution(Names, Cookie) ->
    case ewpcap_dist:ensure(?PROG, Names) of
        ok -> ok;
        {error, Reason} -> fatal("cannot start distribution: ~tp", [Reason])
    end,
    Cookie =:= undefined orelse erlang:set_cookie(Cookie),
    ok.

%%% -------------------------------------------------------------------
%%% Live capture
%%% -------------------------------------------------------------------

capture(O) ->
    Node = daemon(O),
    Dev = case O#opts.dev of
              undefined -> <<>>;
              D -> unicode:characters_to_binary(D)
          end,
    % Without --immediate, ewpcapd's default timing: 1 ms kernel blocks,
    % which lose nothing on bursts where immediate mode drops (see the
    % README), and still deliver within milliseconds, to a terminal too.
    Base = ewpcap_dump_args:live_opts(O, ?BATCH),
    S = open_live(Node, Dev, Base, O#opts.filter),
    #ewpcap_resource{ref = Ref} = S,
    {DevName, Dlt} = handle_info(Node, Ref, Dev),
    % the output first (its interface description asks the daemon): as
    % tcpdump's, "listening on" means that the packets are being taken
    Out = ewpcap_dump_out:open(O, {Dlt, O#opts.snaplen},
                               #{node => Node, device => DevName, filter => O#opts.filter,
                                 description => dev_description(Node, DevName)},
                               async),
    install_signals(),
    err_line("listening on ~ts, link-type ~ts, snapshot length ~b bytes",
             [DevName, ewpcap_dump_dlt:desc(Dlt), O#opts.snaplen]),
    Status = case {O#opts.write, is_tty(2)} of
                 {Name, true} when Name =/= undefined ->
                     erlang:send_after(?STATUS_MS, self(), status),
                     {S, 0};
                 _ ->
                     undefined
             end,
    L = try
            loop(#loop{ref = Ref, left = O#opts.count, out = Out, status = Status})
        catch
            throw:{output_closed, _, L0} -> L0#loop{eof = closed}
        end,
    Stats = ewpcap:stats(S),
    Drops = daemon_drops(Node, Ref),
    ok = ewpcap:close(S),
    ewpcap_dump_out:close(L#loop.out,
                          case Stats of
                              {ok, #ewpcap_stat{recv = SRecv, drop = SDrop, ifdrop = SIfDrop}} ->
                                  #{recv => SRecv, drop => SDrop + SIfDrop,
                                    delivered => L#loop.captured};
                              {error, _} ->
                                  undefined
                          end),
    % end the live count's line, or the terminal's echo of ^C
    (Status =/= undefined orelse (L#loop.eof =:= signal andalso is_tty(2)))
        andalso err_raw("\n"),
    case Stats of
        {ok, #ewpcap_stat{recv = Recv, drop = Drop, ifdrop = IfDrop}} ->
            err_raw(io_lib:format("~b packet~s captured~n~b packet~s received by filter~n"
                                  "~b packet~s dropped by kernel~n",
                                  [L#loop.captured, plural(L#loop.captured),
                                   Recv, plural(Recv), Drop, plural(Drop)])),
            IfDrop =:= 0 orelse
                err_raw(io_lib:format("~b packet~s dropped by interface~n", [IfDrop, plural(IfDrop)])),
            Drops =:= 0 orelse
                err_raw(io_lib:format("~b packet~s dropped by ewpcapd~n", [Drops, plural(Drops)]));
        {error, _} ->
            err_raw(io_lib:format("~b packet~s captured~n", [L#loop.captured, plural(L#loop.captured)]))
    end,
    case L#loop.eof of
        {error, Reason} -> fatal("~ts", [reason(Reason)]);
        _ -> 0
    end.

%% A bad filter is a usage error (exit 2), anything else a runtime error.
%% libpcap's messages do not say which is which: when the open with the
%% filter fails, one without it tells.
open_live(Node, Dev, Base, Filter) ->
    Opts = Base ++ [{filter, Filter} || Filter =/= <<>>],
    case ewpcap:open(Node, Dev, Opts) of
        {ok, S} ->
            S;
        {error, enomem} ->
            usage("filter too long", []);
        {error, Reason} when Filter =/= <<>> ->
            case ewpcap:open(Node, Dev, Base) of
                {ok, S} ->
                    ok = ewpcap:close(S),
                    usage("bad filter expression '~ts': ~ts", [Filter, reason(Reason)]);
                {error, _} ->
                    fatal("~ts: ~ts", [dev_name(Dev), reason(Reason)])
            end;
        {error, Reason} ->
            fatal("~ts: ~ts", [dev_name(Dev), reason(Reason)])
    end.

dev_name(<<>>) -> "default device";
dev_name(Dev) -> Dev.

%% pcap's description of the device (getifaddrs), for pcapng's
%% if_description; else which daemon captured it.
dev_description(Node, DevName) ->
    Dev = unicode:characters_to_binary(DevName),
    Desc = case ewpcap:getifaddrs(Node) of
               {ok, Ifs} ->
                   [D || {Name, Attrs} <- Ifs, unicode:characters_to_binary(Name) =:= Dev,
                         {description, D} <- Attrs];
               {error, _} ->
                   []
           end,
    case Desc of
        [D | _] -> to_list(D);
        [] -> DevName ++ " captured by " ++ atom_to_list(Node)
    end.

%% The device name and DLT of the handle, from the daemon's info.
handle_info(Node, Ref, Dev) ->
    case ewpcap:info(Node) of
        {ok, Info} ->
            Hs = proplists:get_value(handles, Info, []),
            case [H || H <- Hs, proplists:get_value(ref, H) =:= Ref] of
                [H | _] ->
                    {to_list(proplists:get_value(device, H, Dev)),
                     proplists:get_value(datalink, H, undefined)};
                [] ->
                    {to_list(Dev), undefined}
            end;
        {error, _} ->
            {to_list(Dev), undefined}
    end.

daemon_drops(Node, Ref) ->
    case ewpcap:info(Node) of
        {ok, Info} ->
            Hs = proplists:get_value(handles, Info, []),
            lists:sum([proplists:get_value(drops, H, 0)
                       || H <- Hs, proplists:get_value(ref, H) =:= Ref]);
        {error, _} ->
            0
    end.

to_list(B) when is_binary(B) -> binary_to_list(B);
to_list(L) when is_list(L) -> L;
to_list(A) when is_atom(A) -> atom_to_list(A).

loop(#loop{left = 0} = L) ->
    L;
loop(#loop{ref = Ref} = L) ->
    receive
        {ewpcap, Ref, Dlt, Time, Len, Packet} ->
            loop(packets(Dlt, [{Time, Len, Packet}], L));
        {ewpcap_batch, Ref, Dlt, Batch} ->
            loop(packets(Dlt, Batch, L));
        {ewpcap_eof, Ref} ->
            L#loop{eof = eof};
        {ewpcap_error, Ref, Reason} ->
            L#loop{eof = {error, Reason}};
        {?MODULE, signal, _} ->
            L#loop{eof = signal};
        {ewpcap_dump_names, IP, Name} ->
            loop(resolved(IP, Name, L));
        status ->
            erlang:send_after(?STATUS_MS, self(), status),
            loop(status(L))
    end.

%% A name looked up in the background (live captures print the address
%% until it is known).
resolved(IP, Name, L) ->
    L#loop{out = ewpcap_dump_out:resolved(IP, Name, L#loop.out)}.

%% The live count, as dumpcap shows it, when writing to a file and
%% stderr is a terminal.
status(#loop{status = {S, _}} = L) ->
    Drops = case ewpcap:stats(S) of
                {ok, #ewpcap_stat{drop = D, ifdrop = I}} -> D + I;
                {error, _} -> 0
            end,
    err_raw(io_lib:format("\rPackets: ~b  Bytes: ~b  Dropped: ~b ",
                          [L#loop.captured, L#loop.bytes, Drops])),
    L;
status(L) ->
    L.

packets(_Dlt, [], L) ->
    L;
packets(Dlt, Batch, #loop{left = Left} = L) ->
    Take = case Left of
               infinity -> Batch;
               _ -> lists:sublist(Batch, Left)
           end,
    N = length(Take),
    Bytes = lists:sum([byte_size(P) || {_, _, P} <- Take]),
    Out = try
              ewpcap_dump_out:emit(Dlt, Take, L#loop.out)
          catch
              throw:{output_closed, O1} -> throw({output_closed, O1, L#loop{out = O1}})
          end,
    L#loop{out = Out, captured = L#loop.captured + N, bytes = L#loop.bytes + Bytes,
           left = case Left of
                      infinity -> infinity;
                      _ -> Left - N
                  end}.

%%% -------------------------------------------------------------------
%%% Reading savefiles
%%% -------------------------------------------------------------------

read_file(O) ->
    F = open_savefile(O#opts.read, O#opts.precision),
    #{name := Name, linktype := Dlt, snaplen := Snaplen} = ewpcap_pcap_file:info(F),
    err_line("reading from file ~ts, link-type ~ts, snapshot length ~b",
             [Name, ewpcap_dump_dlt:file_desc(Dlt), Snaplen]),
    install_signals(),
    Out = ewpcap_dump_out:open(O, {Dlt, max(1, Snaplen)}, file_source(O), sync),
    L = try
            read_loop(F, Dlt, #loop{ref = make_ref(), left = O#opts.count, out = Out})
        catch
            throw:{output_closed, _, L0} -> L0
        end,
    ewpcap_dump_out:close(L#loop.out, undefined),
    0.

open_savefile(Name, Precision) ->
    case ewpcap_pcap_file:open_read(Name, #{precision => Precision}) of
        {ok, F} -> F;
        {error, Reason} -> fatal("~ts", [ewpcap_pcap_file:format_error(Reason)])
    end.

read_loop(_F, _Dlt, #loop{left = 0} = L) ->
    L;
read_loop(F, Dlt, L) ->
    receive
        {?MODULE, signal, _} -> L
    after 0 ->
        % a batch of records, written with one call: per packet, the
        % writes to standard output cost more than the formatting
        N = case L#loop.left of
                infinity -> ?BATCH;
                Left -> min(Left, ?BATCH)
            end,
        case read_batch(F, N) of
            {eof, Batch} -> packets(Dlt, Batch, L);
            {ok, Batch, F1} -> read_loop(F1, Dlt, packets(Dlt, Batch, L))
        end
    end.

read_batch(F, N) ->
    case ewpcap_pcap_file:read(F, N) of
        {error, Reason} -> fatal("~ts", [ewpcap_pcap_file:format_error(Reason)]);
        Batch -> Batch
    end.

file_source(#opts{read = Name, filter = Filter}) ->
    #{description => "read from " ++ Name, filter => Filter}.

%% -r with a filter: the daemon reads the file and applies the filter.
read_file_filtered(O) ->
    Name = O#opts.read,
    Name =/= "-" orelse usage("a filter cannot be applied to standard input (-r -)", []),
    % the header, and a clear message when the file is missing
    F = open_savefile(Name, micro),
    ok = ewpcap_pcap_file:close_read(F),
    #{linktype := Dlt, snaplen := Snaplen} = ewpcap_pcap_file:info(F),
    Node = daemon(O#opts{node = undefined}),
    Path = filename:absname(Name),
    Base = [{batch, ?BATCH} | ewpcap_dump_args:time_opts(O)],
    S = try ewpcap:open(Node, {file, Path}, Base ++ [{filter, O#opts.filter}]) of
            {ok, S0} ->
                S0;
            {error, enomem} ->
                usage("filter too long", []);
            {error, Reason} ->
                case ewpcap:open(Node, {file, Path}, Base) of
                    {ok, S1} ->
                        ok = ewpcap:close(S1),
                        usage("bad filter expression '~ts': ~ts", [O#opts.filter, reason(Reason)]);
                    {error, _} ->
                        fatal("~ts: ~ts", [Name, reason(Reason)])
                end
        catch
            error:badarg ->
                fatal("-r with a filter needs an ewpcap with file support", [])
        end,
    err_line("reading from file ~ts, link-type ~ts, snapshot length ~b",
             [Name, ewpcap_dump_dlt:file_desc(Dlt), Snaplen]),
    install_signals(),
    Out = ewpcap_dump_out:open(O, {Dlt, max(1, Snaplen)}, file_source(O), sync),
    L = try
            loop(#loop{ref = S#ewpcap_resource.ref, left = O#opts.count, out = Out})
        catch
            throw:{output_closed, _, L0} -> L0#loop{eof = closed}
        end,
    _ = catch ewpcap:close(S),
    ewpcap_dump_out:close(L#loop.out, undefined),
    case L#loop.eof of
        {error, R} -> fatal("~ts: ~ts", [Name, reason(R)]);
        _ -> 0
    end.

%%% -------------------------------------------------------------------
%%% Signals: SIGTERM, SIGHUP (and SIGINT where OTP allows it) end the
%%% capture as the count would.
%%% -------------------------------------------------------------------

install_signals() ->
    _ = [catch os:set_signal(Sig, handle) || Sig <- [sigint, sighup, sigterm]],
    Self = self(),
    case gen_event:add_handler(erl_signal_server, {?MODULE, Self}, Self) of
        ok ->
            % without the default handler, SIGTERM does not stop the node
            _ = gen_event:delete_handler(erl_signal_server, erl_signal_handler, []),
            ok;
        _ ->
            ok
    end.

%% @private
-spec init(pid()) -> {ok, pid()}.
init(Pid) ->
    {ok, Pid}.

%% @private
-spec handle_event(atom(), pid()) -> {ok, pid()}.
handle_event(Sig, Pid) when Sig =:= sigint; Sig =:= sigterm; Sig =:= sighup ->
    Pid ! {?MODULE, signal, Sig},
    {ok, Pid};
handle_event(_, Pid) ->
    {ok, Pid}.

%% @private
-spec handle_call(term(), pid()) -> {ok, ok, pid()}.
handle_call(_, Pid) ->
    {ok, ok, Pid}.

%% @private
-spec handle_info(term(), pid()) -> {ok, pid()}.
handle_info(_, Pid) ->
    {ok, Pid}.

%% @private
-spec terminate(term(), pid()) -> ok.
terminate(_, _) ->
    ok.

%%% -------------------------------------------------------------------
%%% Terminals and stderr
%%% -------------------------------------------------------------------

%% Whether our file descriptor Fd is a terminal (Linux: /proc).
is_tty(Fd) ->
    case file:read_link("/proc/self/fd/" ++ integer_to_list(Fd)) of
        {ok, "/dev/pts/" ++ _} -> true;
        {ok, "/dev/tty" ++ _} -> true;
        {ok, "/dev/console"} -> true;
        _ -> false
    end.

err(Fmt, Args) ->
    err_raw([?PROG ": ", io_lib:format(Fmt, Args), $\n]).

err_line(Fmt, Args) ->
    err_raw([io_lib:format(Fmt, Args), $\n]).

err_raw(Chars) ->
    io:put_chars(standard_error, Chars).

plural(1) -> "";
plural(_) -> "s".

reason(R) when is_list(R) -> R;
reason(R) when is_binary(R) -> R;
reason(R) -> io_lib:format("~tp", [R]).

