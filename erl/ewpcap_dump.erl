%%% @doc ewpcap_dump: a tcpdump-like command line tool on top of ewpcap.
%%%
%%% This module is the main module of the escript `bin/ewpcap_dump' built
%%% by `make' (see `ewpcap_dump(1)' for the user's documentation). It
%%% captures through an ewpcapd, the embedded one by default or the one
%%% named with `-N', and prints one line per packet, or writes a pcap
%%% savefile (`-w'); it also reads savefiles (`-r').
%%%
%%% The savefile format is written and read here, in Erlang: the classic
%%% libpcap format (global header, then a record header and the bytes for
%%% each packet), microsecond resolution when written, both byte orders
%%% and both resolutions (magic `0xa1b2c3d4' and `0xa1b23c4d') when read.
%%% A filter given with `-r' needs pcap's compiler, so the file is then
%%% read by the daemon (`ewpcap:open({file, Path}, Options)').
%%%
%%% Ctrl-C: OTP 25 cannot handle SIGINT in Erlang (os:set_signal/2 refuses
%%% it). The escript's second line is a one-line sh wrapper (its shebang
%%% is `/bin/sh'; escript sees that line as a comment): it runs the escript
%%% with `+Bi' (SIGINT ignored by the emulator) and turns SIGINT into
%%% SIGTERM, which this module handles through `erl_signal_server' (it is
%%% also a gen_event handler for that purpose).
%%%
%%% The decoding functions are exported for the tests: parse_args/1,
%%% format_packet/4, pcap_header/3, pcap_record/3, read_savefile/1.
%%% @end
-module(ewpcap_dump).

-behaviour(gen_event).

-include("ewpcap.hrl").

-export([main/1]).
-export([
    parse_args/1,
    format_packet/4,
    new_printer/2,
    pcap_header/3,
    pcap_record/3,
    read_savefile/1,
    linktype_name/1
]).
-export([init/1, handle_event/2, handle_call/2, handle_info/2, terminate/2]).

-export_type([opts/0, printer/0]).

-define(PROG, "ewpcap_dump").
-define(MAX_SNAPLEN, 262144).
-define(BATCH, 256).
-define(FLUSH_BYTES, 65536).
-define(STATUS_MS, 500).

-record(opts, {
    node :: node() | undefined,
    dev :: string() | undefined,
    list = false :: boolean(),
    count = infinity :: pos_integer() | infinity,
    snaplen = ?MAX_SNAPLEN :: pos_integer(),
    promisc = true :: boolean(),
    buffer :: pos_integer() | undefined,
    immediate = false :: boolean(),
    write :: string() | undefined,
    read :: string() | undefined,
    numeric = false :: boolean(),
    absolute = false :: boolean(),
    verbose = 0 :: non_neg_integer(),
    cookie :: atom() | undefined,
    unbuffered = false :: boolean(),
    filter = <<>> :: binary(),
    help = false :: boolean(),
    version = false :: boolean()
}).

-opaque opts() :: #opts{}.
%% Parsed command line.

%% Text output state: name caches and TCP sequence bases (as tcpdump,
%% sequence numbers print relative to the first ACK of a conversation).
-record(printer, {
    numeric = false :: boolean(),
    absolute = false :: boolean(),
    verbose = 0 :: non_neg_integer(),
    hosts = #{} :: #{inet:ip_address() => string()},
    services :: #{{tcp | udp, 0..65535} => string()} | undefined,
    tcp = #{} :: #{term() => {non_neg_integer(), non_neg_integer()}}
}).

-opaque printer() :: #printer{}.

%% Savefile output.
-record(writer, {
    io :: file:io_device() | standard_io,
    name :: string(),
    unbuffered :: boolean(),
    snaplen :: pos_integer(),
    header = false :: boolean(),
    buf = [] :: iolist(),
    size = 0 :: non_neg_integer()
}).

%% The capture loop.
-record(loop, {
    ref :: reference(),
    left :: non_neg_integer() | infinity,
    captured = 0 :: non_neg_integer(),
    bytes = 0 :: non_neg_integer(),
    out :: {text, #printer{}} | {file, #writer{}},
    status :: {ewpcap:socket(), integer()} | undefined,
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
            O = parse_args(Args),
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

%%% ===================================================================
%%% Command line
%%% ===================================================================

%% Flags taking an argument, then boolean flags, as in getopt(3) with
%% GNU permutation: options and the filter expression may be mixed, `--'
%% ends the options.
-define(ARG_FLAGS, "NicsBwr").
-define(BOOL_FLAGS, "DpnvUhS").

%% @doc Parses the command line; throws `{usage, Message}'.
-spec parse_args([string()]) -> opts().
parse_args(Args) ->
    {Opts, Expr} = parse_args(Args, #opts{}, []),
    check(Opts#opts{filter = unicode:characters_to_binary(lists:join(" ", Expr))}).

parse_args([], O, Expr) ->
    {O, lists:reverse(Expr)};
parse_args(["--" | Rest], O, Expr) ->
    {O, lists:reverse(Expr, Rest)};
parse_args(["--" ++ Long | Rest], O, Expr) ->
    {Name, Inline} =
        case string:split(Long, "=") of
            [N, V] -> {N, {value, V}};
            [N] -> {N, none}
        end,
    {O1, Rest1} = long_flag(Name, Inline, Rest, O),
    parse_args(Rest1, O1, Expr);
parse_args(["-" ++ [_ | _] = Short | Rest], O, Expr) ->
    {O1, Rest1} = short_flags(tl(Short), Rest, O),
    parse_args(Rest1, O1, Expr);
parse_args([Word | Rest], O, Expr) ->
    parse_args(Rest, O, [Word | Expr]).

short_flags([], Rest, O) ->
    {O, Rest};
short_flags([C | Tail], Rest, O) ->
    case {lists:member(C, ?ARG_FLAGS), lists:member(C, ?BOOL_FLAGS)} of
        {true, _} when Tail =/= [] ->
            {flag([C], Tail, O), Rest};
        {true, _} ->
            case Rest of
                [Arg | Rest1] -> {flag([C], Arg, O), Rest1};
                [] -> usage("option -~c requires an argument", [C])
            end;
        {false, true} ->
            short_flags(Tail, Rest, flag([C], true, O));
        {false, false} ->
            usage("unknown option -~tc (see " ?PROG " -h)", [C])
    end.

%% Long names: ewpcap_dump's own, and tcpdump's long names of the same
%% flags.
long_flag(Name, Inline, Rest, O) ->
    Table = [
        {"immediate", immediate}, {"immediate-mode", immediate},
        {"cookie", "cookie"}, {"help", "h"}, {"version", version},
        {"list-interfaces", "D"}, {"interface", "i"}, {"count", "c"},
        {"snapshot-length", "s"}, {"buffer-size", "B"},
        {"no-promiscuous-mode", "p"}, {"packet-buffered", "U"},
        {"node", "N"}, {"absolute-tcp-sequence-numbers", "S"},
        {"tls-optfile", "tls-optfile"} % TLS/IPv6 (issue 11)
    ],
    case lists:keyfind(Name, 1, Table) of
        false ->
            usage("unknown option --~ts (see " ?PROG " -h)", [Name]);
        {_, Atom} when is_atom(Atom) ->
            Inline =:= none orelse usage("option --~ts takes no argument", [Name]),
            {flag(Atom, true, O), Rest};
        {_, Flag} ->
            case {lists:member(hd(Flag), ?ARG_FLAGS) orelse Flag =:= "cookie"
                  orelse Flag =:= "tls-optfile", Inline, Rest} of
                {false, none, _} -> {flag(Flag, true, O), Rest};
                {false, _, _} -> usage("option --~ts takes no argument", [Name]);
                {true, {value, V}, _} -> {flag(Flag, V, O), Rest};
                {true, none, [V | Rest1]} -> {flag(Flag, V, O), Rest1};
                {true, none, []} -> usage("option --~ts requires an argument", [Name])
            end
    end.

flag("N", V, O) -> O#opts{node = node_name(V)};
flag("i", V, O) -> O#opts{dev = V};
flag("c", V, O) -> O#opts{count = int("-c", V, 1, 16#FFFFFFFF)};
flag("s", V, O) ->
    case int("-s", V, 0, ?MAX_SNAPLEN) of
        0 -> O#opts{snaplen = ?MAX_SNAPLEN};
        N -> O#opts{snaplen = N}
    end;
flag("B", V, O) -> O#opts{buffer = int("-B", V, 1, 16#7FFFFFFF div 1024)};
flag("w", V, O) -> O#opts{write = V};
flag("r", V, O) -> O#opts{read = V};
flag("cookie", V, O) -> O#opts{cookie = list_to_atom(V)};
flag("tls-optfile", V, O) -> tls_optfile(V), O; % TLS/IPv6 (issue 11)
flag("D", _, O) -> O#opts{list = true};
flag("p", _, O) -> O#opts{promisc = false};
flag("n", _, O) -> O#opts{numeric = true};
flag("S", _, O) -> O#opts{absolute = true};
flag("v", _, O) -> O#opts{verbose = O#opts.verbose + 1};
flag("U", _, O) -> O#opts{unbuffered = true};
flag("h", _, O) -> O#opts{help = true};
flag(version, _, O) -> O#opts{version = true};
flag(immediate, _, O) -> O#opts{immediate = true}.

int(Flag, V, Min, Max) ->
    try list_to_integer(V) of
        N when N >= Min, N =< Max -> N;
        _ -> usage("invalid ~s argument '~ts': not in ~b..~b", [Flag, V, Min, Max])
    catch
        error:badarg -> usage("invalid ~s argument '~ts': not a number", [Flag, V])
    end.

node_name(V) ->
    case string:split(V, "@") of
        [[_ | _], [_ | _]] -> list_to_atom(V);
        _ -> usage("invalid -N argument '~ts': expected NAME@HOST", [V])
    end.

check(#opts{read = R, node = N}) when R =/= undefined, N =/= undefined ->
    usage("-r reads a file here: -N is for live captures", []);
check(#opts{read = R, dev = D}) when R =/= undefined, D =/= undefined ->
    usage("-r and -i cannot be used together", []);
check(O) ->
    O.

-spec usage(io:format(), [term()]) -> no_return().
usage(Fmt, Args) ->
    throw({usage, io_lib:format(Fmt, Args)}).

-spec fatal(io:format(), [term()]) -> no_return().
fatal(Fmt, Args) ->
    throw({fatal, io_lib:format(Fmt, Args)}).

usage_text() ->
    "Usage: " ?PROG " [-DnpSUv] [-B KiB] [-c count] [--cookie cookie] [--immediate]\n"
    "                   [-i interface] [-N node] [-r file] [-s snaplen] [-w file]\n"
    "                   [expression]\n"
    "\n"
    "  -D             list the interfaces the daemon may open, with their addresses\n"
    "  -i DEV         capture on DEV (default: the daemon's first device)\n"
    "  -N NODE        capture through the ewpcapd NODE (default: an embedded one)\n"
    "  --cookie C     distribution cookie for NODE (default ~/.erlang.cookie)\n"
    "  --tls-optfile F  reach NODE over TLS distribution with this -ssl_dist_optfile\n"
    "  -c COUNT       exit after COUNT packets\n"
    "  -s SNAPLEN     bytes captured per packet (default and 0: 262144)\n"
    "  -p             do not put the interface in promiscuous mode\n"
    "  -B KiB         kernel buffer size (default: ewpcapd's)\n"
    "  --immediate    libpcap's immediate mode (default: ewpcapd's 1 ms blocks)\n"
    "  -w FILE        write a pcap savefile; '-' is standard output\n"
    "  -U             flush the savefile after each packet\n"
    "  -r FILE        read a pcap savefile; '-' is standard input\n"
    "  -n             do not convert addresses and ports to names\n"
    "  -S             print absolute TCP sequence numbers\n"
    "  -v             more detail (IP header fields, link-layer addresses);\n"
    "                 -vv also the runtime's log\n"
    "  -h, --version  this help, the version\n"
    "  expression     a pcap-filter(7) expression\n".

%%% ===================================================================
%%% Running
%%% ===================================================================

run(#opts{help = true}) ->
    io:put_chars(usage_text()),
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
            io:put_chars(format_ifaddrs(Ifs)),
            0;
        {error, Reason} ->
            fatal("getifaddrs: ~ts", [reason(Reason)])
    end;
run(#opts{read = File, filter = <<>>} = O) when File =/= undefined ->
    read_file(O);
run(#opts{read = File} = O) when File =/= undefined ->
    read_file_filtered(O);
run(O) ->
    capture(O).

%%% -------------------------------------------------------------------
%%% The daemon: distribution, cookie, embedded ewpcapd
%%% -------------------------------------------------------------------

daemon(#opts{node = undefined, cookie = Cookie}) ->
    setup_app(),
    Cookie =:= undefined orelse start_distribution(shortnames, Cookie),
    try
        ewpcap:node()
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
        case lists:member($., Host) orelse lists:member($:, Host) of % ':': IPv6 (issue 11)
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
    case erlang:node() of
        nonode@nohost ->
            ok = start_epmd(),
            Base = ?PROG "_" ++ os:getpid() ++ "_" ++ integer_to_list(rand:uniform(1000000)),
            Started =
                case net_kernel:start([list_to_atom(Base), Names]) of
                    {ok, _} ->
                        ok;
                    {error, _} when Names =:= longnames ->
                        % no FQDN for this host: use the loopback address
                        net_kernel:start([list_to_atom(Base ++ "@127.0.0.1"), longnames]);
                    {error, _} = E ->
                        E
                end,
            case Started of
                ok -> ok;
                {ok, _} -> ok;
                {error, Reason} -> fatal("cannot start distribution: ~tp", [Reason])
            end;
        _ ->
            ok
    end,
    Cookie =:= undefined orelse erlang:set_cookie(Cookie),
    ok.

start_epmd() ->
    Root = code:root_dir(),
    Candidates = [os:find_executable("epmd")
                  | filelib:wildcard(filename:join([Root, "erts-*", "bin", "epmd"]))]
        ++ [filename:join([Root, "bin", "epmd"])],
    case [E || E <- Candidates, is_list(E), filelib:is_regular(E)] of
        [Epmd | _] ->
            _ = os:cmd(shell_quote(Epmd) ++ " -daemon"),
            ok;
        [] ->
            ok
    end.

shell_quote(S) ->
    "'" ++ lists:flatmap(fun($') -> "'\\''"; (C) -> [C] end, S) ++ "'".

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
    Base = [{snaplen, O#opts.snaplen}, {promisc, O#opts.promisc},
            {time_unit, microsecond}, {batch, ?BATCH}]
        ++ [{timeout, immediate} || O#opts.immediate]
        ++ [{buffer, O#opts.buffer * 1024} || O#opts.buffer =/= undefined],
    S = open_live(Node, Dev, Base, O#opts.filter),
    #ewpcap_resource{ref = Ref} = S,
    {DevName, Dlt} = handle_info(Node, Ref, Dev),
    err_line("listening on ~ts, link-type ~ts, snapshot length ~b bytes",
             [DevName, linktype_desc(Dlt), O#opts.snaplen]),
    install_signals(),
    Out = output(O, Dlt, O#opts.snaplen),
    Status = case {Out, is_tty(2)} of
                 {{file, _}, true} ->
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
    close_output(L#loop.out),
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
        status ->
            erlang:send_after(?STATUS_MS, self(), status),
            loop(status(L))
    end.

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
              emit(Dlt, Take, L#loop.out)
          catch
              throw:{output_closed, O1} -> throw({output_closed, O1, L#loop{out = O1}})
          end,
    L#loop{out = Out, captured = L#loop.captured + N, bytes = L#loop.bytes + Bytes,
           left = case Left of
                      infinity -> infinity;
                      _ -> Left - N
                  end}.

%%% -------------------------------------------------------------------
%%% Output: text lines or a savefile
%%% -------------------------------------------------------------------

output(#opts{write = undefined} = O, _Dlt, _Snaplen) ->
    {text, new_printer(O#opts.numeric, O#opts.verbose, O#opts.absolute)};
output(#opts{write = Name, unbuffered = U}, Dlt, Snaplen) ->
    Io = case Name of
             "-" ->
                 ok = io:setopts(standard_io, [binary, {encoding, latin1}]),
                 standard_io;
             _ ->
                 case file:open(Name, [write, raw, binary]) of
                     {ok, Fd} -> Fd;
                     {error, Reason} -> fatal("~ts: ~ts", [Name, file:format_error(Reason)])
                 end
         end,
    W = #writer{io = Io, name = Name, unbuffered = U, snaplen = Snaplen},
    {file, case Dlt of
               undefined -> W;
               _ -> write_header(W, Dlt)
           end}.

%% @doc A printer for format_packet/4.
-spec new_printer(Numeric :: boolean(), Verbose :: non_neg_integer()) -> printer().
new_printer(Numeric, Verbose) ->
    new_printer(Numeric, Verbose, false).

new_printer(Numeric, Verbose, Absolute) ->
    #printer{numeric = Numeric, verbose = Verbose, absolute = Absolute}.

emit(Dlt, Batch, {text, P}) ->
    {Lines, P1} = lists:foldl(
                    fun({Time, Len, Packet}, {Acc, Pr}) ->
                            {Line, Pr1} = format_packet(Dlt, {Time, Len, Packet}, Pr, line),
                            {[Acc, Line, $\n], Pr1}
                    end, {[], P}, Batch),
    case catch io:put_chars(standard_io, Lines) of
        ok -> {text, P1};
        _ -> throw({output_closed, {text, P1}})
    end;
emit(Dlt, Batch, {file, W}) ->
    W1 = case W#writer.header of
             false -> write_header(W, Dlt);
             true -> W
         end,
    {file, lists:foldl(fun(Rec, Wr) -> write_record(Wr, Rec) end, W1, Batch)}.

write_header(W, Dlt) ->
    put_bytes(W#writer{header = true}, pcap_header(dlt_to_linktype(Dlt), W#writer.snaplen, native)).

write_record(#writer{unbuffered = U} = W, {Time, Len, Packet}) ->
    W1 = put_bytes(W, pcap_record(Time, Len, Packet)),
    case U orelse W1#writer.size >= ?FLUSH_BYTES of
        true -> flush(W1);
        false -> W1
    end.

put_bytes(#writer{buf = Buf, size = Size} = W, Bytes) ->
    W#writer{buf = [Buf, Bytes], size = Size + iolist_size(Bytes)}.

flush(#writer{size = 0} = W) ->
    W;
flush(#writer{io = Io, buf = Buf} = W) ->
    case catch file:write(Io, Buf) of
        ok ->
            W#writer{buf = [], size = 0};
        {error, Reason} when Reason =:= epipe; Reason =:= terminated ->
            throw({output_closed, {file, W#writer{buf = [], size = 0}}});
        {error, Reason} ->
            fatal("~ts: ~ts", [W#writer.name, file:format_error(Reason)]);
        _ ->
            throw({output_closed, {file, W#writer{buf = [], size = 0}}})
    end.

close_output({text, _}) ->
    ok;
close_output({file, W}) ->
    W1 = try flush(W) catch throw:{output_closed, _} -> W end,
    case W1#writer.io of
        standard_io -> ok;
        Fd -> _ = file:close(Fd), ok
    end.

%% @doc The savefile's global header: magic 0xa1b2c3d4 (microseconds),
%% version 2.4, zone 0, sigfigs 0, snaplen, link type, in the given byte
%% order.
-spec pcap_header(0..16#FFFFFFFF, pos_integer(), big | little | native) -> binary().
pcap_header(LinkType, Snaplen, native) ->
    <<16#a1b2c3d4:32/native, 2:16/native, 4:16/native, 0:32/native, 0:32/native,
      Snaplen:32/native, LinkType:32/native>>;
pcap_header(LinkType, Snaplen, big) ->
    <<16#a1b2c3d4:32/big, 2:16/big, 4:16/big, 0:32, 0:32, Snaplen:32/big, LinkType:32/big>>;
pcap_header(LinkType, Snaplen, little) ->
    <<16#a1b2c3d4:32/little, 2:16/little, 4:16/little, 0:32, 0:32,
      Snaplen:32/little, LinkType:32/little>>.

%% @doc One savefile record, host byte order: `Time' in microseconds
%% since the epoch, `Len' the length on the wire.
-spec pcap_record(non_neg_integer(), non_neg_integer(), binary()) -> iolist().
pcap_record(Time, Len, Packet) ->
    [<<(Time div 1000000):32/native, (Time rem 1000000):32/native,
       (byte_size(Packet)):32/native, Len:32/native>>, Packet].

%% DLT_RAW is 12 (14 on OpenBSD) in the API and 101 in files; the other
%% values we meet are the same in both.
dlt_to_linktype(12) -> 101;
dlt_to_linktype(14) -> 101;
dlt_to_linktype(Dlt) -> Dlt.

%%% -------------------------------------------------------------------
%%% Reading savefiles
%%% -------------------------------------------------------------------

-record(savefile, {
    io :: file:io_device() | standard_io,
    endian :: big | little,
    unit :: micro | nano,
    snaplen :: non_neg_integer(),
    linktype :: non_neg_integer(),
    name :: string()
}).

%% @doc Reads a whole savefile (for the tests): `{ok, LinkType, Snaplen,
%% [{TimeMicroseconds, Len, Packet}]}' or `{error, Reason}'.
-spec read_savefile(file:filename()) ->
    {ok, non_neg_integer(), non_neg_integer(), [{non_neg_integer(), non_neg_integer(), binary()}]}
    | {error, term()}.
read_savefile(Name) ->
    try open_savefile(Name) of
        F ->
            Recs = read_all(F, []),
            _ = file:close(F#savefile.io),
            {ok, F#savefile.linktype, F#savefile.snaplen, Recs}
    catch
        throw:{fatal, Msg} -> {error, lists:flatten(Msg)}
    end.

read_all(F, Acc) ->
    case next_record(F) of
        eof -> lists:reverse(Acc);
        Rec -> read_all(F, [Rec | Acc])
    end.

open_savefile("-") ->
    ok = io:setopts(standard_io, [binary, {encoding, latin1}]),
    savefile_header(standard_io, "-");
open_savefile(Name) ->
    case file:open(Name, [read, raw, binary, {read_ahead, 262144}]) of
        {ok, Fd} -> savefile_header(Fd, Name);
        {error, Reason} -> fatal("~ts: ~ts", [Name, file:format_error(Reason)])
    end.

savefile_header(Io, Name) ->
    case read_n(Io, 24) of
        <<Magic:4/binary, Rest:20/binary>> ->
            {Endian, Unit} =
                case Magic of
                    <<16#a1b2c3d4:32/big>> -> {big, micro};
                    <<16#a1b2c3d4:32/little>> -> {little, micro};
                    <<16#a1b23c4d:32/big>> -> {big, nano};
                    <<16#a1b23c4d:32/little>> -> {little, nano};
                    <<16#0a0d0d0a:32>> -> fatal("~ts: pcapng files are not supported", [Name]);
                    _ -> fatal("~ts: not a pcap savefile", [Name])
                end,
            {Snaplen, LinkType} =
                case Endian of
                    big -> <<_:32, _:32, _:32, S:32/big, L:32/big>> = Rest, {S, L};
                    little -> <<_:32, _:32, _:32, S:32/little, L:32/little>> = Rest, {S, L}
                end,
            #savefile{io = Io, endian = Endian, unit = Unit, snaplen = Snaplen,
                      linktype = LinkType band 16#FFFF, name = Name};
        _ ->
            fatal("~ts: truncated savefile header", [Name])
    end.

read_n(Io, N) ->
    case file:read(Io, N) of
        {ok, Data} -> iolist_to_binary(Data);
        eof -> <<>>;
        {error, Reason} -> fatal("read: ~ts", [file:format_error(Reason)])
    end.

next_record(#savefile{io = Io, endian = E, unit = U, name = Name}) ->
    case read_n(Io, 16) of
        <<>> ->
            eof;
        <<Hdr:16/binary>> ->
            {Sec, Frac, Incl, Orig} =
                case E of
                    big -> <<A:32/big, B:32/big, C:32/big, D:32/big>> = Hdr, {A, B, C, D};
                    little -> <<A:32/little, B:32/little, C:32/little, D:32/little>> = Hdr, {A, B, C, D}
                end,
            Incl =< 16#4000000 orelse fatal("~ts: bogus record length ~b", [Name, Incl]),
            Packet = read_n(Io, Incl),
            byte_size(Packet) =:= Incl orelse fatal("~ts: truncated record", [Name]),
            Micro = case U of
                        micro -> Frac;
                        nano -> Frac div 1000
                    end,
            {Sec * 1000000 + Micro, Orig, Packet};
        _ ->
            fatal("~ts: truncated record header", [Name])
    end.

read_file(O) ->
    F = open_savefile(O#opts.read),
    Dlt = F#savefile.linktype,
    err_line("reading from file ~ts, link-type ~ts, snapshot length ~b",
             [F#savefile.name, linktype_desc(Dlt), F#savefile.snaplen]),
    install_signals(),
    Out = output(O, Dlt, max(1, F#savefile.snaplen)),
    L = try
            read_loop(F, #loop{ref = make_ref(), left = O#opts.count, out = Out})
        catch
            throw:{output_closed, _, L0} -> L0
        end,
    close_output(L#loop.out),
    0.

read_loop(_F, #loop{left = 0} = L) ->
    L;
read_loop(F, L) ->
    receive
        {?MODULE, signal, _} -> L
    after 0 ->
        case next_record(F) of
            eof -> L;
            Rec -> read_loop(F, packets(F#savefile.linktype, [Rec], L))
        end
    end.

%% -r with a filter: the daemon reads the file and applies the filter.
read_file_filtered(O) ->
    Name = O#opts.read,
    Name =/= "-" orelse usage("a filter cannot be applied to standard input (-r -)", []),
    % the header, and a clear message when the file is missing
    F = open_savefile(Name),
    _ = file:close(F#savefile.io),
    Node = daemon(O#opts{node = undefined}),
    Path = filename:absname(Name),
    Base = [{time_unit, microsecond}, {batch, ?BATCH}],
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
    Dlt = F#savefile.linktype,
    err_line("reading from file ~ts, link-type ~ts, snapshot length ~b",
             [Name, linktype_desc(Dlt), F#savefile.snaplen]),
    install_signals(),
    Out = output(O, Dlt, max(1, F#savefile.snaplen)),
    L = try
            loop(#loop{ref = S#ewpcap_resource.ref, left = O#opts.count, out = Out})
        catch
            throw:{output_closed, _, L0} -> L0#loop{eof = closed}
        end,
    _ = catch ewpcap:close(S),
    close_output(L#loop.out),
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

%%% -------------------------------------------------------------------
%%% -D
%%% -------------------------------------------------------------------

format_ifaddrs(Ifs) ->
    {Lines, _} = lists:mapfoldl(
                   fun({Name, Attrs}, N) ->
                           {[integer_to_list(N), $., Name, if_flags(Name, Attrs), $\n,
                             [["\t", A, $\n] || A <- if_addrs(Attrs)]], N + 1}
                   end, 1, Ifs),
    Lines.

if_flags(Name, Attrs) ->
    Desc = case proplists:get_value(description, Attrs) of
               undefined -> [];
               D -> [" (", D, ")"]
           end,
    Loop = case proplists:get_value(flag, Attrs, []) of
               Flags when is_list(Flags) ->
                   [" [Loopback]" || lists:member(loopback, Flags)];
               _ ->
                   []
           end,
    _ = Name,
    [Desc, Loop].

%% Each {addr, A} starts an address; netmask, broadaddr and dstaddr
%% belong to the address before them.
if_addrs(Attrs) ->
    Groups = lists:foldl(
               fun({addr, A}, Acc) -> [[{addr, A}] | Acc];
                  ({K, V}, [G | Acc]) when K =:= netmask; K =:= broadaddr; K =:= dstaddr ->
                       [[{K, V} | G] | Acc];
                  (_, Acc) -> Acc
               end, [], Attrs),
    [if_addr(lists:reverse(G)) || G <- lists:reverse(Groups)].

if_addr([{addr, A} | More]) ->
    Family = case tuple_size(A) of
                 4 -> "inet ";
                 _ -> "inet6 "
             end,
    [Family, inet:ntoa(A),
     [[" ", key_word(K), " ", inet:ntoa(V)] || {K, V} <- More]].

key_word(netmask) -> "netmask";
key_word(broadaddr) -> "broadcast";
key_word(dstaddr) -> "destination".

%%% ===================================================================
%%% Packet decoding: one line per packet, as tcpdump prints it
%%% ===================================================================

%% @doc Formats one packet: the time (local, as tcpdump), then the
%% summary. `Dlt' is the link type (1 Ethernet, 113 and 276 Linux cooked,
%% 0 BSD loopback, 12/101 raw IP, 228 IPv4, 229 IPv6); `Time' microseconds
%% since the epoch; `Len' the length on the wire. The last argument
%% `line' is reserved for other formats. Returns the line (without
%% newline) and the printer to use for the next packet.
-spec format_packet(non_neg_integer(), {non_neg_integer(), non_neg_integer(), binary()},
                    printer(), line) -> {iolist(), printer()}.
format_packet(Dlt, {Time, Len, Packet}, P, line) ->
    {Summary, P1} = link(Dlt, Len, Packet, P),
    {[format_time(Time), $\s, Summary], P1}.

format_time(Micro) ->
    {_, {H, M, S}} = calendar:system_time_to_local_time(Micro div 1000000, second),
    io_lib:format("~2..0b:~2..0b:~2..0b.~6..0b", [H, M, S, Micro rem 1000000]).

%% Link layers. Len is the wire length of what follows the link header.
link(1, Len, <<Dst:6/binary, Src:6/binary, Type:16, Rest/binary>>, P) ->
    Pre = case P#printer.verbose of
              0 -> [];
              _ -> [mac(Src), " > ", mac(Dst), ", ", ethertype_desc(Type),
                    ", length ", integer_to_list(Len), ": "]
          end,
    {S, P1} = ether(Type, Len - 14, Rest, P),
    {[Pre, S], P1};
link(113, Len, <<_PktType:16, _HaType:16, _HaLen:16, _Addr:8/binary, Proto:16, Rest/binary>>, P) ->
    ether(Proto, Len - 16, Rest, P);
link(276, Len, <<Proto:16, _:16, _IfIndex:32, _HaType:16, _PktType:8, _HaLen:8,
                 _Addr:8/binary, Rest/binary>>, P) ->
    ether(Proto, Len - 20, Rest, P);
link(0, Len, <<Family:4/binary, Rest/binary>>, P) ->
    AF = case Family of
             <<0, 0, _, _>> -> binary:decode_unsigned(Family, big);
             _ -> binary:decode_unsigned(Family, little)
         end,
    case AF of
        2 -> ipv4(Rest, Len - 4, P);
        _ when AF =:= 10; AF =:= 24; AF =:= 28; AF =:= 30 -> ipv6(Rest, Len - 4, P);
        _ -> {["AF ", integer_to_list(AF), ", length ", integer_to_list(Len)], P}
    end;
link(Raw, Len, <<4:4, _/bitstring>> = Packet, P) when Raw =:= 12; Raw =:= 14; Raw =:= 101; Raw =:= 228 ->
    ipv4(Packet, Len, P);
link(Raw, Len, <<6:4, _/bitstring>> = Packet, P) when Raw =:= 12; Raw =:= 14; Raw =:= 101; Raw =:= 229 ->
    ipv6(Packet, Len, P);
link(Dlt, Len, _, P) ->
    {[linktype_name(Dlt), ", length ", integer_to_list(Len), " [|link]"], P}.

ether(16#0800, Len, Rest, P) -> ipv4(Rest, Len, P);
ether(16#86DD, Len, Rest, P) -> ipv6(Rest, Len, P);
ether(16#0806, Len, Rest, P) -> arp(Rest, Len, P);
ether(Tpid, Len, <<Pcp:3, _Dei:1, Vid:12, Type:16, Rest/binary>>, P)
  when Tpid =:= 16#8100; Tpid =:= 16#88A8 ->
    % the tag shows with the link layer (-v), as with tcpdump -e
    {S, P1} = ether(Type, Len - 4, Rest, P),
    case P#printer.verbose of
        0 -> {S, P1};
        _ -> {["vlan ", integer_to_list(Vid), ", p ", integer_to_list(Pcp), ", ",
               ethertype_desc(Type), ", ", S], P1}
    end;
ether(Type, Len, _, P) when Type < 1536 ->
    {["802.3, length ", integer_to_list(Len)], P};
ether(Type, Len, _, P) ->
    {[ethertype_desc(Type), ", length ", integer_to_list(Len)], P}.

ethertype_desc(16#0800) -> "ethertype IPv4 (0x0800)";
ethertype_desc(16#86DD) -> "ethertype IPv6 (0x86dd)";
ethertype_desc(16#0806) -> "ethertype ARP (0x0806)";
ethertype_desc(16#8100) -> "ethertype 802.1Q (0x8100)";
ethertype_desc(16#88CC) -> "ethertype LLDP (0x88cc)";
ethertype_desc(T) -> io_lib:format("ethertype Unknown (0x~4.16.0b)", [T]).

%%% IPv4

ipv4(<<4:4, IHL:4, Tos, TotLen:16, Id:16, _Rsvd:1, DF:1, MF:1, Off:13, TTL, Proto,
       _Sum:16, Src:4/binary, Dst:4/binary, Rest/binary>>, _Len, P)
  when IHL >= 5, TotLen >= IHL * 4 ->
    OptLen = IHL * 4 - 20,
    PayLen = TotLen - IHL * 4,
    Body = case Rest of
               <<_:OptLen/binary, B/binary>> -> binary:part(B, 0, min(byte_size(B), PayLen));
               _ -> <<>>
           end,
    SrcA = ip4(Src),
    DstA = ip4(Dst),
    Head = case P#printer.verbose of
               0 ->
                   "IP ";
               _ ->
                   io_lib:format("IP (tos 0x~.16b, ttl ~b, id ~b, offset ~b, flags [~s], "
                                 "proto ~s (~b), length ~b) ",
                                 [Tos, TTL, Id, Off * 8, frag_flags(DF, MF),
                                  proto_name(Proto), Proto, TotLen])
           end,
    case Off of
        0 ->
            {S, P1} = transport(Proto, SrcA, DstA, Body, PayLen, P),
            {[Head, S], P1};
        _ ->
            {SH, P1} = host(SrcA, P),
            {DH, P2} = host(DstA, P1),
            {[Head, SH, " > ", DH, ": ", proto_frag(Proto)], P2}
    end;
ipv4(<<4:4, _/bitstring>>, _Len, P) ->
    {"IP [|ip]", P};
ipv4(_, _Len, P) ->
    {"IP [|ip]", P}.

frag_flags(0, 0) -> "none";
frag_flags(1, 0) -> "DF";
frag_flags(0, 1) -> "+";
frag_flags(1, 1) -> "DF+".

proto_name(1) -> "ICMP";
proto_name(6) -> "TCP";
proto_name(17) -> "UDP";
proto_name(58) -> "ICMPv6";
proto_name(_) -> "unknown".

proto_frag(6) -> "tcp";
proto_frag(17) -> "udp";
proto_frag(1) -> "icmp";
proto_frag(P) -> ["ip-proto-", integer_to_list(P)].

%%% IPv6

ipv6(<<6:4, Class:8, Flow:20, PayLen:16, Next, HLim, Src:16/binary, Dst:16/binary,
       Rest/binary>>, _Len, P) ->
    Body = binary:part(Rest, 0, min(byte_size(Rest), PayLen)),
    Head = case P#printer.verbose of
               0 ->
                   "IP6 ";
               _ ->
                   ["IP6 (",
                    [io_lib:format("class 0x~2.16.0b, ", [Class]) || Class =/= 0],
                    [io_lib:format("flowlabel 0x~5.16.0b, ", [Flow]) || Flow =/= 0],
                    io_lib:format("hlim ~b, next-header ~s (~b) payload length: ~b) ",
                                  [HLim, proto_name(Next), Next, PayLen])]
           end,
    {Ext, Proto, Body1, PayLen1} = ipv6_ext(Next, Body, PayLen, []),
    {S, P1} = transport(Proto, ip6(Src), ip6(Dst), Body1, PayLen1, P),
    {[Head, Ext, S], P1};
ipv6(_, _Len, P) ->
    {"IP6 [|ip6]", P}.

%% Hop-by-hop, routing, fragment and destination options headers.
ipv6_ext(0, <<Next, HLen, _/binary>> = B, L, Acc) -> ipv6_skip(Next, (HLen + 1) * 8, B, L, ["HBH " | Acc]);
ipv6_ext(60, <<Next, HLen, _/binary>> = B, L, Acc) -> ipv6_skip(Next, (HLen + 1) * 8, B, L, ["DSTOPT " | Acc]);
ipv6_ext(43, <<Next, HLen, _/binary>> = B, L, Acc) -> ipv6_skip(Next, (HLen + 1) * 8, B, L, ["srcrt " | Acc]);
ipv6_ext(44, <<Next, _, Off:13, _:2, M:1, Id:32, _/binary>> = B, L, Acc) ->
    Frag = io_lib:format("frag (0x~8.16.0b:~b|~b) ", [Id, Off * 8, L - 8]),
    case Off of
        0 -> ipv6_skip(Next, 8, B, L, [Frag | Acc]);
        _ -> {lists:reverse([Frag | Acc]), {fragment, Next, M}, <<>>, L - 8}
    end;
ipv6_ext(Next, B, L, Acc) ->
    {lists:reverse(Acc), Next, B, L}.

ipv6_skip(Next, N, B, L, Acc) ->
    case B of
        <<_:N/binary, Rest/binary>> -> ipv6_ext(Next, Rest, L - N, Acc);
        _ -> {lists:reverse(Acc), truncated, <<>>, 0}
    end.

%%% Transport

transport(6, Src, Dst, Body, Len, P) -> tcp(Src, Dst, Body, Len, P);
transport(17, Src, Dst, Body, Len, P) -> udp(Src, Dst, Body, Len, P);
transport(1, Src, Dst, Body, Len, P) -> addrs(Src, Dst, P, fun(P1) -> {icmp(Body, Len, P1), P1} end);
transport(58, Src, Dst, Body, Len, P) -> addrs(Src, Dst, P, fun(P1) -> icmp6(Body, Len, P1) end);
transport({fragment, Proto, _}, Src, Dst, _Body, _Len, P) ->
    addrs(Src, Dst, P, fun(P1) -> {proto_frag(Proto), P1} end);
transport(truncated, Src, Dst, _Body, _Len, P) ->
    addrs(Src, Dst, P, fun(P1) -> {"[|ip6]", P1} end);
transport(Proto, Src, Dst, _Body, Len, P) ->
    addrs(Src, Dst, P, fun(P1) -> {["ip-proto-", integer_to_list(Proto), " ", integer_to_list(Len)], P1} end).

addrs(Src, Dst, P, Then) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    {S, P3} = Then(P2),
    {[SH, " > ", DH, ": ", S], P3}.

udp(Src, Dst, <<SP:16, DP:16, ULen:16, _Sum:16, _/binary>>, _Len, P) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    {SPs, P3} = port(udp, SP, P2),
    {DPs, P4} = port(udp, DP, P3),
    Text = case ULen >= 8 of
               true -> ["UDP, length ", integer_to_list(ULen - 8)];
               false -> ["UDP, bad length ", integer_to_list(ULen), " < 8"]
           end,
    {[SH, $., SPs, " > ", DH, $., DPs, ": ", Text], P4};
udp(Src, Dst, _, _Len, P) ->
    addrs(Src, Dst, P, fun(P1) -> {"[|udp]", P1} end).

tcp(Src, Dst, <<SP:16, DP:16, Seq0:32, Ack0:32, Off:4, _:4, Flags:8, Win:16, _Sum:16,
                Urp:16, Rest/binary>>, Len, P) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    {SPs, P3} = port(tcp, SP, P2),
    {DPs, P4} = port(tcp, DP, P3),
    Addr = [SH, $., SPs, " > ", DH, $., DPs, ": "],
    HLen = Off * 4,
    FlagStr = tcp_flags(Flags),
    if
        HLen < 20 ->
            {[Addr, "Flags [", FlagStr, "], tcp ", integer_to_list(Len - HLen),
              " [bad hdr length ", integer_to_list(HLen), " - too short, < 20]"], P4};
        HLen > Len ->
            {[Addr, "Flags [", FlagStr, "] [bad hdr length ", integer_to_list(HLen),
              " - too long, > ", integer_to_list(Len), "]"], P4};
        true ->
            {Seq, Ack, SackBase, P5} = tcp_relative(Src, Dst, SP, DP, Seq0, Ack0, Flags, P4),
            DataLen = Len - HLen,
            SeqStr = case DataLen > 0 orelse (Flags band 16#07) =/= 0 of
                         true ->
                             [", seq ", integer_to_list(Seq),
                              [[$:, integer_to_list((Seq + DataLen) band 16#FFFFFFFF)] || DataLen > 0]];
                         false ->
                             []
                     end,
            AckStr = [[", ack ", integer_to_list(Ack)] || Flags band 16#10 =/= 0],
            UrgStr = [[", urg ", integer_to_list(Urp)] || Flags band 16#20 =/= 0],
            OptLen = HLen - 20,
            OptStr = case OptLen of
                         0 -> [];
                         _ ->
                             case Rest of
                                 <<Opts:OptLen/binary, _/binary>> ->
                                     [", options [", tcp_options(Opts, SackBase, []), "]"];
                                 _ ->
                                     " [|tcp]"
                             end
                     end,
            {[Addr, "Flags [", FlagStr, "]", SeqStr, AckStr, ", win ", integer_to_list(Win),
              UrgStr, OptStr, ", length ", integer_to_list(DataLen)], P5}
    end;
tcp(Src, Dst, <<SP:16, DP:16, _/binary>>, _Len, P) ->
    {SH, P1} = host(Src, P),
    {DH, P2} = host(Dst, P1),
    {SPs, P3} = port(tcp, SP, P2),
    {DPs, P4} = port(tcp, DP, P3),
    {[SH, $., SPs, " > ", DH, $., DPs, ": [|tcp]"], P4};
tcp(Src, Dst, _, _Len, P) ->
    addrs(Src, Dst, P, fun(P1) -> {"[|tcp]", P1} end).

tcp_flags(0) ->
    "none";
tcp_flags(F) ->
    [C || {Bit, C} <- [{16#01, $F}, {16#02, $S}, {16#04, $R}, {16#08, $P},
                       {16#10, $.}, {16#20, $U}, {16#40, $E}, {16#80, $W}],
          F band Bit =/= 0].

%% Relative sequence numbers as tcpdump prints them: for segments with
%% ACK set, a conversation's base is recorded at its first such segment
%% (and at every SYN) and later numbers print relative to it.
tcp_relative(_Src, _Dst, _SP, _DP, Seq, Ack, _Flags, #printer{absolute = true} = P) ->
    {Seq, Ack, 0, P};
tcp_relative(_Src, _Dst, _SP, _DP, Seq, Ack, Flags, P) when Flags band 16#10 =:= 0 ->
    {Seq, Ack, 0, P};
tcp_relative(Src, Dst, SP, DP, Seq, Ack, Flags, #printer{tcp = T} = P) ->
    SrcB = addr_bin(Src),
    DstB = addr_bin(Dst),
    Rev = SP > DP orelse (SP =:= DP andalso SrcB > DstB),
    Key = case Rev of
              true -> {DstB, SrcB, DP, SP};
              false -> {SrcB, DstB, SP, DP}
          end,
    M32 = 16#FFFFFFFF,
    case maps:find(Key, T) of
        {ok, {ThSeq, ThAck}} when Flags band 16#02 =:= 0 ->
            {RSeq, RAck, Base} =
                case Rev of
                    true -> {(Seq - ThAck) band M32, (Ack - ThSeq) band M32, ThSeq};
                    false -> {(Seq - ThSeq) band M32, (Ack - ThAck) band M32, ThAck}
                end,
            {RSeq, RAck, Base, P};
        _ ->
            Entry = case Rev of
                        true -> {(Ack - 1) band M32, Seq};
                        false -> {Seq, (Ack - 1) band M32}
                    end,
            {ThSeq, ThAck} = Entry,
            Base = case Rev of
                       true -> ThSeq;
                       false -> ThAck
                   end,
            {Seq, Ack, Base, P#printer{tcp = T#{Key => Entry}}}
    end.

addr_bin({A, B, C, D}) -> <<A, B, C, D>>;
addr_bin(T) when tuple_size(T) =:= 8 -> << <<X:16>> || X <- tuple_to_list(T) >>.

tcp_options(<<>>, _Base, Acc) ->
    lists:join(",", lists:reverse(Acc));
tcp_options(<<0, _/binary>>, _Base, Acc) ->
    lists:join(",", lists:reverse(["eol" | Acc]));
tcp_options(<<1, Rest/binary>>, Base, Acc) ->
    tcp_options(Rest, Base, ["nop" | Acc]);
tcp_options(<<Kind, Len, Rest/binary>>, Base, Acc) when Len >= 2, byte_size(Rest) >= Len - 2 ->
    DLen = Len - 2,
    <<Data:DLen/binary, More/binary>> = Rest,
    tcp_options(More, Base, [tcp_option(Kind, Data, Base) | Acc]);
tcp_options(_, _Base, Acc) ->
    [lists:join(",", lists:reverse(Acc)), [[","] || Acc =/= []], "[bad opt]"].

tcp_option(2, <<Mss:16>>, _) -> ["mss ", integer_to_list(Mss)];
tcp_option(3, <<Ws>>, _) -> ["wscale ", integer_to_list(Ws)];
tcp_option(4, <<>>, _) -> "sackOK";
tcp_option(5, Blocks, Base) when byte_size(Blocks) rem 8 =:= 0 ->
    ["sack ", integer_to_list(byte_size(Blocks) div 8), " ",
     [io_lib:format("{~b:~b}", [(S - Base) band 16#FFFFFFFF, (E - Base) band 16#FFFFFFFF])
      || <<S:32, E:32>> <= Blocks]];
tcp_option(5, _, _) -> "sack invalid sack";
tcp_option(8, <<Val:32, Ecr:32>>, _) -> ["TS val ", integer_to_list(Val), " ecr ", integer_to_list(Ecr)];
tcp_option(Kind, Data, _) ->
    Name = case lists:keyfind(Kind, 1, [{19, "md5"}, {20, "scps"}, {28, "uto"}, {29, "tcp-ao"},
                                         {30, "mptcp"}, {34, "tfo"}, {254, "exp"}]) of
               {_, N} -> N;
               false -> ["unknown-", integer_to_list(Kind)]
           end,
    [Name, [[" 0x", [io_lib:format("~2.16.0b", [B]) || <<B>> <= Data]] || Data =/= <<>>]].

icmp(<<Type, Code, _Sum:16, Rest/binary>>, Len, P) ->
    ["ICMP ", icmp_text(Type, Code, Rest, P), ", length ", integer_to_list(Len)];
icmp(_, _Len, _P) ->
    "[|icmp]".

icmp_text(0, _, <<Id:16, Seq:16, _/binary>>, _) ->
    io_lib:format("echo reply, id ~b, seq ~b", [Id, Seq]);
icmp_text(8, _, <<Id:16, Seq:16, _/binary>>, _) ->
    io_lib:format("echo request, id ~b, seq ~b", [Id, Seq]);
icmp_text(3, Code, <<_:32, Inner/binary>>, P) ->
    case {Code, Inner} of
        {3, <<4:4, IHL:4, _:8/binary, Proto, _:16, _:4/binary, Dst:4/binary, Rest/binary>>}
          when Proto =:= 17 orelse Proto =:= 6 ->
            OL = IHL * 4 - 20,
            case Rest of
                <<_:OL/binary, _SP:16, DP:16, _/binary>> ->
                    PT = case Proto of 17 -> udp; 6 -> tcp end,
                    {DH, P1} = host(ip4(Dst), P),
                    {DPs, _} = port(PT, DP, P1),
                    [DH, " ", atom_to_list(PT), " port ", DPs, " unreachable"];
                _ ->
                    "udp port unreachable"
            end;
        {_, <<4:4, _:4, _:8/binary, Proto, _:16, _:4/binary, Dst:4/binary, _/binary>>} ->
            {DH, _} = host(ip4(Dst), P),
            case Code of
                0 -> ["net ", DH, " unreachable"];
                1 -> ["host ", DH, " unreachable"];
                2 -> [DH, " protocol ", integer_to_list(Proto), " unreachable"];
                _ -> [DH, " unreachable - code ", integer_to_list(Code)]
            end;
        _ ->
            "unreachable"
    end;
icmp_text(11, 0, _, _) -> "time exceeded in-transit";
icmp_text(11, 1, _, _) -> "ip reassembly time exceeded";
icmp_text(5, _, _, _) -> "redirect";
icmp_text(13, _, _, _) -> "time stamp query";
icmp_text(14, _, _, _) -> "time stamp reply";
icmp_text(Type, _, _, _) -> ["type-#", integer_to_list(Type)].

icmp6(<<Type, Code, _Sum:16, Rest/binary>>, Len, P) ->
    {Text, P1} = icmp6_text(Type, Code, Rest, P),
    {["ICMP6, ", Text, ", length ", integer_to_list(Len)], P1};
icmp6(_, _Len, P) ->
    {"[|icmp6]", P}.

icmp6_text(128, _, <<Id:16, Seq:16, _/binary>>, P) ->
    {io_lib:format("echo request, id ~b, seq ~b", [Id, Seq]), P};
icmp6_text(129, _, <<Id:16, Seq:16, _/binary>>, P) ->
    {io_lib:format("echo reply, id ~b, seq ~b", [Id, Seq]), P};
icmp6_text(135, _, <<_:32, Tgt:16/binary, _/binary>>, P) ->
    {H, P1} = host(ip6(Tgt), P),
    {["neighbor solicitation, who has ", H], P1};
icmp6_text(136, _, <<_:32, Tgt:16/binary, _/binary>>, P) ->
    {H, P1} = host(ip6(Tgt), P),
    {["neighbor advertisement, tgt is ", H], P1};
icmp6_text(2, _, <<Mtu:32, _/binary>>, P) ->
    {["packet too big, mtu ", integer_to_list(Mtu)], P};
icmp6_text(143, _, <<_:16, N:16, _/binary>>, P) ->
    {["multicast listener report v2, ", integer_to_list(N), " group record(s)"], P};
icmp6_text(1, 4, <<_:32, 6:4, _:28, _:16, NH, _, _:16/binary, Dst:16/binary, SP:16, DP:16,
                   _/binary>>, P) when NH =:= 17; NH =:= 6 ->
    _ = SP,
    PT = case NH of 17 -> udp; 6 -> tcp end,
    {H, P1} = host(ip6(Dst), P),
    {DPs, P2} = port(PT, DP, P1),
    {["destination unreachable, unreachable port, ", H, " ", atom_to_list(PT), " port ", DPs], P2};
icmp6_text(Type, _, _, P) ->
    Names = [{1, "destination unreachable"}, {3, "time exceeded in-transit"},
             {4, "parameter problem"}, {130, "multicast listener query"},
             {131, "multicast listener report"}, {132, "multicast listener done"},
             {133, "router solicitation"}, {134, "router advertisement"},
             {137, "redirect"}],
    case lists:keyfind(Type, 1, Names) of
        {_, N} -> {N, P};
        false -> {["unknown icmp6 type (", integer_to_list(Type), ")"], P}
    end.

%%% ARP

arp(<<1:16, 16#0800:16, 6, 4, Op:16, Sha:6/binary, Spa:4/binary, Tha:6/binary,
      Tpa:4/binary, _/binary>>, Len, P) ->
    {SH, P1} = host(ip4(Spa), P),
    {TH, P2} = host(ip4(Tpa), P1),
    Text = case Op of
               1 ->
                   ["Request who-has ", TH,
                    [[" (", mac(Tha), ")"] || Tha =/= <<0:48>>],
                    " tell ", SH];
               2 ->
                   ["Reply ", SH, " is-at ", mac(Sha)];
               3 ->
                   ["Reverse Request who-is ", mac(Tha), " tell ", mac(Sha)];
               4 ->
                   ["Reverse Reply ", mac(Tha), " at ", TH];
               _ ->
                   ["op ", integer_to_list(Op)]
           end,
    {["ARP, ", Text, ", length ", integer_to_list(Len)], P2};
arp(<<HT:16, PT:16, _/binary>>, Len, P) ->
    {io_lib:format("ARP, hardware type ~b, protocol type 0x~4.16.0b, length ~b", [HT, PT, Len]), P};
arp(_, _Len, P) ->
    {"ARP, [|arp]", P}.

%%% Addresses, names

ip4(<<A, B, C, D>>) -> {A, B, C, D}.

ip6(Bin) -> list_to_tuple([X || <<X:16>> <= Bin]).

mac(Bin) ->
    lists:join($:, [io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin]).

host(IP, #printer{numeric = true} = P) ->
    {inet:ntoa(IP), P};
host(IP, #printer{hosts = H} = P) ->
    case H of
        #{IP := Name} ->
            {Name, P};
        _ ->
            Name = case inet:gethostbyaddr(IP, 2000) of
                       {ok, {hostent, N, _, _, _, _}} when is_list(N) -> N;
                       _ -> inet:ntoa(IP)
                   end,
            {Name, P#printer{hosts = H#{IP => Name}}}
    end.

port(_Proto, Port, #printer{numeric = true} = P) ->
    {integer_to_list(Port), P};
port(Proto, Port, #printer{services = undefined} = P) ->
    port(Proto, Port, P#printer{services = services()});
port(Proto, Port, #printer{services = S} = P) ->
    case S of
        #{{Proto, Port} := Name} -> {Name, P};
        _ -> {integer_to_list(Port), P}
    end.

%% /etc/services, first name of each port.
services() ->
    case file:read_file("/etc/services") of
        {ok, Bin} ->
            lists:foldl(
              fun(Line, Acc) ->
                      case string:lexemes(hd(string:split(Line, "#")), " \t") of
                          [Name, PortProto | _] ->
                              case string:split(PortProto, "/") of
                                  [PortS, Proto] when Proto =:= <<"tcp">>; Proto =:= <<"udp">> ->
                                      try binary_to_integer(PortS) of
                                          Port ->
                                              K = {binary_to_atom(Proto), Port},
                                              case Acc of
                                                  #{K := _} -> Acc;
                                                  _ -> Acc#{K => binary_to_list(Name)}
                                              end
                                      catch
                                          error:badarg -> Acc
                                      end;
                                  _ ->
                                      Acc
                              end;
                          _ ->
                              Acc
                      end
              end, #{}, binary:split(Bin, <<"\n">>, [global]));
        {error, _} ->
            #{}
    end.

%% @doc tcpdump's name of a link type, and its description.
-spec linktype_name(integer()) -> nonempty_string().
linktype_name(0) -> "NULL";
linktype_name(1) -> "EN10MB";
linktype_name(12) -> "RAW";
linktype_name(14) -> "RAW";
linktype_name(101) -> "RAW";
linktype_name(113) -> "LINUX_SLL";
linktype_name(228) -> "IPV4";
linktype_name(229) -> "IPV6";
linktype_name(276) -> "LINUX_SLL2";
linktype_name(N) -> "DLT_" ++ integer_to_list(N).

linktype_desc(undefined) ->
    "unknown";
linktype_desc(N) ->
    Desc = case N of
               0 -> "BSD loopback";
               1 -> "Ethernet";
               12 -> "Raw IP";
               14 -> "Raw IP";
               101 -> "Raw IP";
               113 -> "Linux cooked v1";
               228 -> "Raw IPv4";
               229 -> "Raw IPv6";
               276 -> "Linux cooked v2";
               _ -> "unknown"
           end,
    [linktype_name(N), " (", Desc, ")"].

%%% ---- TLS and IPv6 distribution (issue 11, begin) --------------------
%%% The distribution protocol is fixed when the emulator starts: the sh
%%% wrapper of bin/ewpcap_dump (bin-src/mkescript.escript) turns
%%% `--tls-optfile F' into `-proto_dist inet_tls -ssl_dist_optfile F' in
%%% ERL_FLAGS, and an IPv6 host in `-N' into `inet6_tcp' (`inet6_tls').
%%% Here we only check that it did.

tls_optfile(File) ->
    filelib:is_regular(File) orelse usage("--tls-optfile ~ts: no such file", [File]),
    Protos = case init:get_argument(proto_dist) of
                 {ok, Ps} -> lists:append(Ps);
                 error -> []
             end,
    lists:member("inet_tls", Protos) orelse lists:member("inet6_tls", Protos) orelse
        usage("--tls-optfile: TLS distribution is not running: start " ?PROG
              " through its wrapper, or set ERL_FLAGS=\"-proto_dist inet_tls"
              " -ssl_dist_optfile ~ts\"", [filename:absname(File)]).

%%% ---- TLS and IPv6 distribution (issue 11, end) ----------------------
