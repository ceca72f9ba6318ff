%%% @doc Differential tests: ewpcap_dump -r against tcpdump -r (4.99, the
%%% oracle) on random, mostly malformed packets.
%%%
%%% The savefiles in ewpcap_dump_diff_SUITE_data/ were made once with
%%% Wireshark's randpkt (it takes no seed, so they are checked in):
%%% `randpkt -b 120 -c 300 -t TYPE rand_TYPE.pcap' for TYPE in arp, eth,
%%% icmp, ip, ipv6, tcp, udp; rand_ipv6b.pcap and rand_ipv6c.pcap are two
%%% more runs of type ipv6 (its random next headers reach many protocols,
%%% one file alone would be fitted to). ipv6_full.pcap is not random: 158
%%% whole packets over those protocols (checksums right and wrong,
%%% options, extension headers before TCP and UDP, ICMPv6 of every type
%%% tcpdump names, neighbour discovery with well-formed and malformed
%%% options, node information, router renumbering, RPL, messages cut short, checksums after routing headers,
%%% payload lengths of 0 with and without a Jumbo Payload option),
%%% written by mk_ipv6_full.py beside it; ipv4_opts.pcap, 27 IPv4 packets
%%% with options (routes, timestamps, RA; malformed and cut short;
%%% checksums after a source route), by mk_ipv4_opts.py. randpkt writes
%%% its tcp packets on Token Ring
%%% (DLT 6), which we do not decode: rand_tcp.pcap is that file with each
%%% 22-byte Token Ring + SNAP header replaced by an Ethernet header
%%% (type IPv4), the IP and TCP bytes unchanged.
%%%
%%% For each file and flag set, a packet's text (its first line and any
%%% continuation lines: -v, hex dumps) is compared with tcpdump's; the
%%% share of identical packets is logged for every pair, and every pair
%%% must be 100% (the first differing packet is printed). Every
%%% run must end with status 0 within ?RUN_TIMEOUT seconds: random input
%%% never crashes or hangs ewpcap_dump.
%%% @end
-module(ewpcap_dump_diff_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).

-define(RUN_TIMEOUT, 60).

-define(TYPES, [arp, eth, icmp, ip, ipv4_opts, ipv6, ipv6b, ipv6c, ipv6_full, tcp, udp]).
-define(FLAGS, [["-n"], ["-n", "-v"], ["-n", "-e"], ["-n", "-x"], ["-n", "-X"], ["-n", "-vv"]]).

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [claimed_identical, shares_reported, no_crash_no_hang, linktype_header_line,
     nano_time_stamps].

init_per_suite(Config) ->
    Ebin = filename:dirname(code:which(ewpcap)),
    Dump = filename:join([filename:dirname(Ebin), "bin", "ewpcap_dump"]),
    case {filelib:is_regular(Dump), os:find_executable("tcpdump")} of
        {false, _} -> {skip, "bin/ewpcap_dump not built (make)"};
        {_, false} -> {skip, "tcpdump not installed (a CI dependency: .ci/deps)"};
        _ -> [{dump, Dump} | Config]
    end.

end_per_suite(_Config) ->
    ok.

%% What we claim: identical to tcpdump for every packet, every type and
%% flag set (all are also logged by shares_reported).
claimed() ->
    [{T, F} || T <- ?TYPES, F <- ?FLAGS].

%%% ===================================================================
%%% Cases
%%% ===================================================================

claimed_identical() ->
    [{doc, "Every packet of the claimed type and flag pairs prints as tcpdump prints it"}].
claimed_identical(Config) ->
    Fails = [{T, F, First} || {T, F} <- claimed(),
                              {Same, Total, First} <- [compare(Config, T, F)],
                              Same =/= Total],
    [ct:pal("~s ~s: first difference~n  tcpdump:     ~ts~n  ewpcap_dump: ~ts",
            [T, lists:join(" ", F), Theirs, Ours]) || {T, F, {Theirs, Ours}} <- Fails],
    ?assertEqual([], [{T, F} || {T, F, _} <- Fails]).

shares_reported() ->
    [{doc, "The share of identical packets for every type and flag set, logged"}].
shares_reported(Config) ->
    Rows = [{T, F, compare(Config, T, F)} || T <- ?TYPES, F <- ?FLAGS],
    Text = [io_lib:format("~-5s ~-8s ~4b / ~4b  ~5.1f%~s~n",
                          [T, lists:join(" ", F), S, N, 100 * S / max(N, 1),
                           case lists:member({T, F}, claimed()) of
                               true -> "  (claimed)";
                               false -> ""
                           end])
            || {T, F, {S, N, _}} <- Rows],
    ct:pal("identical packets, ewpcap_dump vs tcpdump:~n~ts", [Text]),
    ct:comment("~b of ~b pairs at 100%",
               [length([x || {_, _, {S, N, _}} <- Rows, S =:= N]), length(Rows)]),
    ok.

no_crash_no_hang() ->
    [{doc, "Random input never crashes or hangs ewpcap_dump (status 0, bounded time)"}].
no_crash_no_hang(Config) ->
    [begin
         {Status, _} = run(Config, ewpcap_dump, T, ["-n", "-v", "-e", "-X"]),
         ?assertEqual({T, 0}, {T, Status})
     end || T <- ?TYPES],
    ok.

%% Savefile link types: named ones, ones libpcap reads as another DLT
%% (100, 101, 106), ones without a name (14, 147, 290, 65000).
-define(LINKTYPES, [0, 1, 6, 9, 10, 14, 100, 101, 105, 106, 113, 127, 147, 200, 228,
                    229, 276, 290, 65000]).

linktype_header_line() ->
    [{doc, "The 'reading from file' line names the link type as tcpdump's does"}].
linktype_header_line(Config) ->
    Dir = ?config(priv_dir, Config),
    Lines = [begin
                 File = filename:join(Dir, "lt" ++ integer_to_list(LT) ++ ".pcap"),
                 ok = file:write_file(File, ewpcap_pcap_file:header(LT, 100, native)),
                 {LT, first_stderr_line(os:find_executable("tcpdump"), File),
                  first_stderr_line(?config(dump, Config), File)}
             end || LT <- ?LINKTYPES],
    [ct:pal("link type ~b~n  tcpdump:     ~ts~n  ewpcap_dump: ~ts", [LT, T, E])
     || {LT, T, E} <- Lines, T =/= E],
    ?assertMatch("reading from file " ++ _, element(2, hd(Lines))),
    ?assertEqual([], [LT || {LT, T, E} <- Lines, T =/= E]).

nano_time_stamps() ->
    [{doc, "Times print as tcpdump's with and without --nano (9 or 6 digits) for a "
      "nanosecond pcap, a pcapng file with if_tsresol 9 and a microsecond pcap"}].
nano_time_stamps(Config) ->
    Dir = ?config(priv_dir, Config),
    {ok, 1, _, Recs} = ewpcap_pcap_file:read_file(
                         filename:join(?config(data_dir, Config), "rand_udp.pcap")),
    % nanoseconds that differ in every digit, across a second's end
    Nanos = [{T * 1000 + (I * 123456789) rem 1000000000, L, B}
             || {I, {T, L, B}} <- lists:zip(lists:seq(1, 40), lists:sublist(Recs, 40))],
    Files = [{"ts-ns.pcap", [ewpcap_pcap_file:header(1, 262144, native, nano)
                             | [ewpcap_pcap_file:record(T, L, B, nano) || {T, L, B} <- Nanos]]},
             {"ts-ns.pcapng", [ewpcap_pcapng:shb(#{}),
                               ewpcap_pcapng:idb(#{linktype => 1, snaplen => 262144,
                                                   tsresol => 9})
                               | [ewpcap_pcapng:epb(0, T, L, B) || {T, L, B} <- Nanos]]},
             {"ts-us.pcap", [ewpcap_pcap_file:header(1, 262144, native)
                             | [ewpcap_pcap_file:record(T div 1000, L, B) || {T, L, B} <- Nanos]]}],
    Diffs = [{File, Flags, Theirs, Ours}
             || {File, Bin} <- Files,
                Path <- [filename:join(Dir, File)],
                ok =:= file:write_file(Path, Bin),
                Flags <- [["-n"], ["-n", "--nano"], ["-n", "--time-stamp-precision=nano"]],
                {0, Theirs} <- [run_file(os:find_executable("tcpdump"), Flags, Path)],
                {0, Ours} <- [run_file(?config(dump, Config), Flags, Path)],
                Theirs =/= Ours orelse
                    % the check can fail: tcpdump printed as many lines as packets
                    length(packets(Theirs)) =/= 40],
    [ct:pal("~s ~s: first difference~n  tcpdump:     ~ts~n  ewpcap_dump: ~ts",
            [File, lists:join(" ", Flags), A, B])
     || {File, Flags, T, O} <- Diffs,
        {A, B} <- [hd([D || {X, Y} = D <- lists:zip(packets(T), pad(packets(O), length(packets(T)))),
                            X =/= Y] ++ [{<<"(same)">>, <<"(same)">>}])]],
    {0, NanoText} = run_file(?config(dump, Config), ["-n", "--nano"],
                             filename:join(Dir, "ts-ns.pcap")),
    ?assertMatch([<<_:8/binary, ".123456789 ", _/binary>> | _], packets(NanoText)),
    ?assertEqual([], [{F, Fl} || {F, Fl, _, _} <- Diffs]).

%%% ===================================================================
%%% Helpers

first_stderr_line(Exe, File) ->
    Out = os:cmd(lists:flatten(["timeout ", integer_to_list(?RUN_TIMEOUT), " ", Exe,
                                " -n -r ", File, " 2>&1 >/dev/null"])),
    hd(string:split(Out, "\n")).
%%% ===================================================================

%% {Identical, Total, FirstDifference} over tcpdump's packets.
compare(Config, Type, Flags) ->
    {0, Theirs} = run(Config, tcpdump, Type, Flags),
    {0, Ours} = run(Config, ewpcap_dump, Type, Flags),
    TP = packets(Theirs),
    OP = packets(Ours),
    Pairs = lists:zip(TP, pad(OP, length(TP))),
    Same = length([x || {A, A} <- Pairs]),
    First = case [{A, B} || {A, B} <- Pairs, A =/= B] of
                [] when length(OP) > length(TP) -> {<<"(end)">>, lists:nth(length(TP) + 1, OP)};
                [] -> none;
                [D | _] -> D
            end,
    Total = case length(OP) > length(TP) of
                true -> length(TP) + 1;   % extra output from us is a difference
                false -> length(TP)
            end,
    {Same, Total, First}.

pad(L, N) when length(L) >= N -> lists:sublist(L, N);
pad(L, N) -> L ++ lists:duplicate(N - length(L), <<"(missing)">>).

%% A packet's text: a line that starts with the time or "[Invalid",
%% with the lines that follow it until the next such line.
packets(Out) ->
    Lines = binary:split(Out, <<"\n">>, [global, trim]),
    lists:reverse(
      lists:foldl(fun(L, Acc) ->
                          case is_first(L) orelse Acc =:= [] of
                              true -> [L | Acc];
                              false -> [<<(hd(Acc))/binary, "\n", L/binary>> | tl(Acc)]
                          end
                  end, [], Lines)).

is_first(<<H1, H2, $:, _/binary>>) when H1 >= $0, H1 =< $9, H2 >= $0, H2 =< $9 -> true;
is_first(<<"[Invalid header", _/binary>>) -> true;
is_first(_) -> false.

run(Config, Prog, Type, Flags) ->
    Name = case Type of
               ipv6_full -> "ipv6_full.pcap";
               ipv4_opts -> "ipv4_opts.pcap";
               _ -> "rand_" ++ atom_to_list(Type) ++ ".pcap"
           end,
    File = filename:join(?config(data_dir, Config), Name),
    Exe = case Prog of
              tcpdump -> os:find_executable("tcpdump");
              ewpcap_dump -> ?config(dump, Config)
          end,
    run_file(Exe, Flags, File).

%% {Status, Stdout} of Exe Flags -r File, in UTC.
run_file(Exe, Flags, File) ->
    Cmd = ["TZ=UTC timeout ", integer_to_list(?RUN_TIMEOUT), " ", Exe, " ",
           lists:join(" ", Flags), " -r ", File, " 2>/dev/null; echo \"#status=$?\""],
    Out = unicode:characters_to_binary(os:cmd(lists:flatten(Cmd))),
    [Text, Status] = binary:split(Out, <<"#status=">>),
    {binary_to_integer(string:trim(Status)), Text}.
