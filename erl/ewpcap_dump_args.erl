%%% @doc ewpcap_dump's command line: getopt(3) with GNU permutation
%%% (options and the filter expression may be mixed, `--' ends the
%%% options), tcpdump's flags and long names, and the usage text.
%%% @end
-module(ewpcap_dump_args).

-include("ewpcap_dump.hrl").

-export([parse_args/1, usage/2, usage_text/0, live_opts/2, time_opts/1]).

-export_type([opts/0]).

-type opts() :: #opts{}.
%% The parsed command line (see erl/ewpcap_dump.hrl).

%% Flags taking an argument, then boolean flags, as in getopt(3) with
%% GNU permutation: options and the filter expression may be mixed, `--'
%% ends the options.
-define(ARG_FLAGS, "NicsBwr").
-define(BOOL_FLAGS, "DpnvUhSexX").

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
        {"tls-optfile", "tls-optfile"}, {"pcapng", pcapng},
        {"time-stamp-precision", "time-stamp-precision"},
        {"nano", nano}, {"micro", micro}, {"merge-window", "merge-window"}
    ],
    case lists:keyfind(Name, 1, Table) of
        false ->
            usage("unknown option --~ts (see " ?PROG " -h)", [Name]);
        {_, Atom} when is_atom(Atom) ->
            Inline =:= none orelse usage("option --~ts takes no argument", [Name]),
            {flag(Atom, true, O), Rest};
        {_, Flag} ->
            case {lists:member(hd(Flag), ?ARG_FLAGS) orelse Flag =:= "cookie"
                  orelse Flag =:= "tls-optfile" orelse Flag =:= "time-stamp-precision"
                  orelse Flag =:= "merge-window",
                  Inline, Rest} of
                {false, none, _} -> {flag(Flag, true, O), Rest};
                {false, _, _} -> usage("option --~ts takes no argument", [Name]);
                {true, {value, V}, _} -> {flag(Flag, V, O), Rest};
                {true, none, [V | Rest1]} -> {flag(Flag, V, O), Rest1};
                {true, none, []} -> usage("option --~ts requires an argument", [Name])
            end
    end.

flag("N", V, O) -> N = node_name(V), O#opts{node = N, order = [{n, N} | O#opts.order]};
flag("i", V, O) -> O#opts{dev = V, order = [{i, V} | O#opts.order]};
flag("merge-window", V, O) -> O#opts{merge_window = int("--merge-window", V, 0, 3600000)};
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
flag("tls-optfile", V, O) -> tls_optfile(V), O;
flag("time-stamp-precision", "micro", O) -> O#opts{precision = micro};
flag("time-stamp-precision", "nano", O) -> O#opts{precision = nano};
flag("time-stamp-precision", V, _O) ->
    usage("invalid --time-stamp-precision argument '~ts': micro or nano", [V]);
flag("D", _, O) -> O#opts{list = true};
flag("p", _, O) -> O#opts{promisc = false};
flag("n", _, O) -> O#opts{numeric = true};
flag("S", _, O) -> O#opts{absolute = true};
flag("v", _, O) -> O#opts{verbose = O#opts.verbose + 1};
flag("e", _, O) -> O#opts{eflag = true};
flag("x", _, O) -> O#opts{xflag = O#opts.xflag + 1};
flag("X", _, O) -> O#opts{xflag_ascii = O#opts.xflag_ascii + 1};
flag("U", _, O) -> O#opts{unbuffered = true};
flag("h", _, O) -> O#opts{help = true};
flag(version, _, O) -> O#opts{version = true};
flag(immediate, _, O) -> O#opts{immediate = true};
flag(pcapng, _, O) -> O#opts{pcapng = true};
flag(nano, _, O) -> O#opts{precision = nano};
flag(micro, _, O) -> O#opts{precision = micro}.

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
check(#opts{pcapng = true, write = undefined}) ->
    usage("--pcapng is for -w", []);
check(O) ->
    interfaces(O).

%% Several -i, or -i NODE:DEV: each interface with its node (a -i DEV
%% takes the last -N before it, else the first -N). One -i and at most
%% one -N (in any order) stay as they were: node and dev.
interfaces(#opts{order = Order} = O) ->
    Given = lists:reverse(Order),
    Nodes = [N || {n, N} <- Given],
    Devs = [D || {i, D} <- Given],
    case {Nodes, Devs, [D || D <- Devs, lists:member($@, D)]} of
        {[_, _ | _], [], _} -> usage("several -N need -i DEV after each (or -i NODE:DEV)", []);
        {[_, _ | _], _, _} -> several(O, Given, hd(Nodes));
        {_, [_, _ | _], _} -> several(O, Given, case Nodes of [N | _] -> N; [] -> undefined end);
        {_, _, [_]} -> several(O, Given, undefined);
        _ -> O
    end.

several(O, Given, First) ->
    {Ifs, _} = lists:mapfoldl(
                 fun({n, N}, _Last) -> {[], N};
                    ({i, D}, Last) -> {[iface(D, Last, First)], Last}
                 end, undefined, Given),
    Ifaces = lists:append(Ifs),
    Named = [N || {N, _} <- Ifaces, N =/= undefined],
    Named =:= [] orelse Named =:= [N || {N, _} <- Ifaces] orelse
        usage("-i ~ts: which node? give every interface as NODE:DEV (or -N NODE before it)",
              [hd([D || {undefined, D} <- Ifaces])]),
    _ = [usage("-N ~ts: no -i for it", [N]) || {n, N} <- Given, not lists:member(N, Named)],
    _ = lists:foldl(fun(If, Seen) ->
                            lists:member(If, Seen) andalso
                                usage("interface ~ts given twice", [iface_name(If)]),
                            [If | Seen]
                    end, [], Ifaces),
    case Ifaces of
        [{N, D}] ->
            O#opts{node = N, dev = D};
        _ when O#opts.read =/= undefined; O#opts.list ->
            usage("several interfaces are for live captures (not -r, -D)", []);
        _ when O#opts.write =/= undefined, not O#opts.pcapng ->
            string:lowercase(filename:extension(O#opts.write)) =:= ".pcapng" orelse
                usage("several interfaces need pcapng (pcap has one link type and no"
                      " interface): -w FILE.pcapng or --pcapng", []),
            O#opts{ifaces = Ifaces};
        _ ->
            O#opts{ifaces = Ifaces}
    end.

%% -i NODE:DEV (split at the last ':', so that ewpcap@::1:lo is ewpcap@::1
%% and lo), or -i DEV on the -N before it (else the first -N).
iface(D, Last, First) ->
    case lists:member($@, D) of
        true ->
            case string:split(D, ":", trailing) of
                [[_ | _] = N, [_ | _] = Dev] ->
                    case string:split(N, "@") of
                        [[_ | _], [_ | _]] -> {list_to_atom(N), Dev};
                        _ -> usage("invalid -i argument '~ts': expected NODE:DEV or DEV", [D])
                    end;
                _ -> usage("invalid -i argument '~ts': expected NODE:DEV or DEV", [D])
            end;
        false when Last =/= undefined -> {Last, D};
        false -> {First, D}
    end.

iface_name({undefined, D}) -> D;
iface_name({N, D}) -> [atom_to_list(N), $:, D].

%% @doc Throws `{usage, Message}': a bad command line (exit status 2).
-spec usage(io:format(), [term()]) -> no_return().
usage(Fmt, Args) ->
    throw({usage, io_lib:format(Fmt, Args)}).

%% @doc The text of `-h'.
-spec usage_text() -> [1..255, ...].
usage_text() ->
    "Usage: " ?PROG " [-DenpSUvxX] [-B KiB] [-c count] [--cookie cookie] [--immediate]\n"
    "                   [-i interface] [-N node] [-r file] [-s snaplen] [-w file]\n"
    "                   [--pcapng] [--time-stamp-precision micro|nano]\n"
    "                   [--merge-window MS] [expression]\n"
    "\n"
    "  -D             list the interfaces the daemon may open, with their addresses\n"
    "  -i DEV         capture on DEV (default: the daemon's first device); several\n"
    "                 -i (each NODE:DEV, or DEV on the -N before it) capture on all\n"
    "                 and merge the packets in time order (-w: pcapng)\n"
    "  -N NODE        capture through the ewpcapd NODE (default: an embedded one)\n"
    "  --merge-window MS  several -i: hold a packet at most MS ms to put it in\n"
    "                 time order (default 500)\n"
    "  --cookie C     distribution cookie for NODE (default ~/.erlang.cookie)\n"
    "  --tls-optfile F  reach NODE over TLS distribution with this -ssl_dist_optfile\n"
    "  -c COUNT       exit after COUNT packets\n"
    "  -s SNAPLEN     bytes captured per packet (default and 0: 262144)\n"
    "  -p             do not put the interface in promiscuous mode\n"
    "  -B KiB         kernel buffer size (default: ewpcapd's)\n"
    "  --immediate    libpcap's immediate mode (default: ewpcapd's 1 ms blocks)\n"
    "  -w FILE        write a pcap savefile; '-' is standard output\n"
    "  --pcapng       with -w: write pcapng (the default for FILE.pcapng)\n"
    "  --time-stamp-precision micro|nano, --micro, --nano\n"
    "                 time stamps of the capture and of -w's file (default micro)\n"
    "  -U             flush the savefile after each packet\n"
    "  -r FILE        read a pcap or pcapng savefile; '-' is standard input\n"
    "  -n             do not convert addresses and ports to names\n"
    "  -S             print absolute TCP sequence numbers\n"
    "  -e             print the link-level header\n"
    "  -v             more detail, as tcpdump -v (IP header fields, checksums);\n"
    "                 -vv also the runtime's log\n"
    "  -x, -X         the packet's bytes in hex (-X: and ASCII), after the link\n"
    "                 header; -xx, -XX: with it\n"
    "  -h, --version  this help, the version\n"
    "  expression     a pcap-filter(7) expression\n".

%% TLS distribution: the protocol is fixed when the emulator starts, so the
%% sh wrapper of bin/ewpcap_dump (bin-src/mkescript.escript) turns
%% `--tls-optfile F' into `-proto_dist inet_tls -ssl_dist_optfile F' in
%% ERL_FLAGS, and an IPv6 host in `-N' into `inet6_tcp' (`inet6_tls').
%% Here we only check that it did.
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

%% @doc The open options of a live capture for O (-s, -p, --immediate,
%% -B, the time stamps' precision), Batch packets a message. A capture of
%% its own ({share, false}): its filter is the kernel's, as tcpdump's is
%% (802.1Q-tagged frames match `udp', `inbound' and `outbound' work),
%% never run in ewpcapd on libpcap's bytes as a shared capture's is.
-spec live_opts(opts(), pos_integer()) -> [ewpcap:open_option()].
live_opts(O, Batch) ->
    [{snaplen, O#opts.snaplen}, {promisc, O#opts.promisc}, {batch, Batch}, {share, false}
     | time_opts(O)]
        ++ [{timeout, immediate} || O#opts.immediate]
        ++ [{buffer, O#opts.buffer * 1024} || O#opts.buffer =/= undefined].

%% @doc The time unit of packets for -w's precision
%% (--time-stamp-precision), and nanosecond stamps asked of libpcap
-spec time_opts(opts()) -> [ewpcap:open_option()].
time_opts(#opts{precision = micro}) -> [{time_unit, microsecond}];
time_opts(#opts{precision = nano}) -> [{tstamp_precision, nano}, {time_unit, nanosecond}].
