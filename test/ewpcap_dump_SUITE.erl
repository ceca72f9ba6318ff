%%% @doc Tests of the ewpcap_dump escript (bin/ewpcap_dump) capturing
%%% live, run as a user would: as an OS process, its output and exit
%%% status checked (savefiles: ewpcap_dump_file_SUITE; what both use:
%%% ewpcap_dump_helpers).
%%%
%%% Group `live' (root) captures on lo, and between two network namespaces
%%% `ewp_ct_dump*' that it creates and always deletes, through a second
%%% ewpcapd (started here, `--netns', with its own cookie): every flag, the
%%% same traffic captured by tcpdump -w and ewpcap_dump -w gives the same
%%% packet bytes, tcpdump and tshark read what ewpcap_dump writes (also
%%% from a pipe), Ctrl-C in a terminal (through script(1)) and SIGTERM end
%%% a capture with tcpdump's statistics and status 0.
%%%
%%% Traffic goes only to 127.0.0.1 / ::1 on lo, on ports chosen here, or
%%% over the veth pair between the suite's namespaces. Times print with
%%% TZ=UTC.
%%% @end
-module(ewpcap_dump_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).

-import(ewpcap_dump_helpers, [
         fixtures/1, known_packets/0, cooked_packets/0, raw_packets/0, eth/1, eth/4, pad/2,
         arp/5, ipv4/4, ipv6/5, ipv6/6, udp/3, tcp/8, tcp/9, icmp/3, addr/1, checksum/1, fold/1,
         write_pcap/3, write_pcap/5, extra_ns/1, norm_rec/1, root/0, dump_path/0, data_dir/0,
         data/2, need/1, known/1, read/1, lines/1, re_quote/1, dump/2, dump/3, cmd/1, start/2,
         start/3, start_cmd/1, start_cmd/2, start_sh/2, get_procs/0, tmp_dir/0, out_file/1,
         quote/1, wait_listening/1, exited/1, wait_until/2, wait_exit/2, stop/2, stop_proc/1,
         descendants/1, descendants/3, start_pty/1, pty_wait/4, pty_wait/5, pty_wait_until/5,
         pattern_prefix/1, pty_exit/3, udp_receiver/0, send_udp/3, send_udp6/3, tcp_exchange/2,
         icmp_echo/2, icmp6_echo/2, make_namespaces/0, run_ip/1, cleanup_namespaces/0,
         start_ns_daemon/1, ns_ready/2, ns_hold/1, stop_ns_daemon/1
        ]).

-define(READY_MS, 20000).     % until "listening on ..." appears

%%% ===================================================================
%%% Common Test callbacks
%%% ===================================================================

suite() ->
    [{timetrap, {minutes, 10}}].

all() ->
    [{group, live}].

groups() ->
    [
        {live, [], [
            list_interfaces,
            count_udp,
            bad_filter_live,
            metadata_filter_own_capture,
            bad_device,
            snaplen,
            buffer,
            immediate,
            write_file_same_as_tcpdump,
            write_stdout_to_tshark,
            unbuffered,
            read_tcpdump_file,
            sigterm_stats,
            ctrl_c_in_terminal,
            live_count_on_terminal,
            {group, netns}
        ]},
        {netns, [], [
            remote_cookie,
            remote_bad_cookie,
            promisc_default_and_off
        ]}
    ].

init_per_suite(Config) ->
    Dump = dump_path(),
    case filelib:is_regular(Dump) of
        true -> [{dump, Dump}, {data, data_dir()} | Config];
        false -> {skip, "bin/ewpcap_dump not built (make)"}
    end.

end_per_suite(_Config) ->
    ok.

init_per_group(live, Config) ->
    case root() of
        false -> {skip, "live captures need root"};
        true -> Config
    end;
init_per_group(netns, Config) ->
    _ = cleanup_namespaces(),
    case os:find_executable("ip") of
        false ->
            {skip, "no ip command"};
        _ ->
            case make_namespaces() of
                {ok, NsA, NsB} ->
                    case start_ns_daemon(NsA) of
                        {ok, Holder, Node, Cookie} ->
                            [{ns_a, NsA}, {ns_b, NsB}, {ns_daemon, Holder}, {ns_node, Node},
                             {ns_cookie, Cookie} | Config];
                        {error, Reason} ->
                            _ = cleanup_namespaces(),
                            ct:fail({ns_daemon, Reason})
                    end;
                {error, Reason} ->
                    _ = cleanup_namespaces(),
                    {skip, lists:flatten(io_lib:format("no namespaces: ~tp", [Reason]))}
            end
    end;
init_per_group(_, Config) ->
    Config.

end_per_group(netns, Config) ->
    stop_ns_daemon(?config(ns_daemon, Config)),
    _ = cleanup_namespaces(),
    ok;
end_per_group(_, _Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, Config) ->
    % a case that failed may leave a capture running: end it
    [stop_proc(P) || P <- get_procs()],
    erase(procs),
    Config.

%%% ===================================================================
%%% Live
%%% ===================================================================

%% -D lists lo with its addresses, numbered.
list_interfaces(Config) ->
    {0, Out, _} = dump(Config, ["-D"]),
    Lines = lines(Out),
    ?assert(lists:any(fun(L) -> re:run(L, <<"^[0-9]+\\.lo \\[Loopback\\]$">>) =/= nomatch end, Lines)),
    ?assert(lists:member(<<"\tinet 127.0.0.1 netmask 255.0.0.0">>, Lines)),
    ?assert(lists:any(fun(L) -> re:run(L, <<"^[0-9]+\\.any \\(">>) =/= nomatch end, Lines)),
    % numbered 1, 2, 3...
    Nums = [binary_to_integer(N) || L <- Lines,
                                    {match, [N]} <- [re:run(L, <<"^([0-9]+)\\.">>, [{capture, all_but_first, binary}])]],
    ?assertEqual(lists:seq(1, length(Nums)), Nums).

%% -c N: N lines, tcpdump's statistics on stderr, status 0. The issue's
%% example `ewpcap_dump -i lo -c 5 udp', on a port of ours.
count_udp(Config) ->
    {Rx, Port} = udp_receiver(),
    P = start(Config, ["-i", "lo", "-c", "5", "-n", "udp", "port", integer_to_list(Port)]),
    ok = wait_listening(P),
    send_udp(Port, 8, <<"hello">>),
    {0, Out, Err} = wait_exit(P, 20000),
    gen_udp:close(Rx),
    Lines = lines(Out),
    ?assertEqual(5, length(Lines)),
    [?assertMatch({match, _}, re:run(L, ["^\\d\\d:\\d\\d:\\d\\d\\.\\d{6} IP 127\\.0\\.0\\.1\\.\\d+ > "
                                         "127\\.0\\.0\\.1\\.", integer_to_list(Port), ": UDP, length 5$"]))
     || L <- Lines],
    [Listening, Captured, Received, Dropped] = lines(Err),
    ?assertEqual(<<"listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes">>, Listening),
    ?assertEqual(<<"5 packets captured">>, Captured),
    ?assertMatch({match, _}, re:run(Received, <<"^\\d+ packets? received by filter$">>)),
    ?assertMatch({match, _}, re:run(Dropped, <<"^\\d+ packets? dropped by kernel$">>)).

bad_filter_live(Config) ->
    {2, <<>>, Err} = dump(Config, ["-i", "lo", "-c", "1", "tcp", "port", "99999999"]),
    ?assertMatch([<<"ewpcap_dump: bad filter expression 'tcp port 99999999': ", _/binary>>], lines(Err)).

bad_device(Config) ->
    {1, <<>>, Err} = dump(Config, ["-i", "ewpnosuchdev0", "-c", "1"]),
    ?assertMatch([<<"ewpcap_dump: ewpnosuchdev0: ", _/binary>>], lines(Err)).

%% ewpcap_dump's capture is its own ({share, false}): its filter runs in
%% the kernel, as tcpdump's, so a filter of kernel metadata (`inbound'),
%% which a shared capture refuses, opens and runs until stopped.
metadata_filter_own_capture(Config) ->
    P = start(Config, ["-i", "lo", "-n", "inbound"]),
    ok = wait_listening(P),
    {0, <<>>, Err} = stop(P, "TERM"),
    ?assertMatch({match, _}, re:run(Err, <<"packets captured">>)).

%% -s 64: records of 64 bytes, the length on the wire kept.
snaplen(Config) ->
    {Rx, Port} = udp_receiver(),
    File = filename:join(?config(priv_dir, Config), "snap.pcap"),
    P = start(Config, ["-i", "lo", "-s", "64", "-c", "3", "-w", File, "udp", "port", integer_to_list(Port)]),
    ok = wait_listening(P),
    send_udp(Port, 3, binary:copy(<<"x">>, 500)),
    {0, <<>>, _} = wait_exit(P, 20000),
    gen_udp:close(Rx),
    {ok, 1, 64, Recs} = ewpcap_pcap_file:read_file(File),
    ?assertEqual(3, length(Recs)),
    [?assertEqual({64, 14 + 20 + 8 + 500}, {byte_size(Pkt), Len}) || {_, Len, Pkt} <- Recs],
    {0, Txt, _} = dump(Config, ["-n", "-r", File]),
    [?assertMatch({match, _}, re:run(L, <<"UDP, length 500$">>)) || L <- lines(Txt)].

%% -B KiB: accepted by the daemon, the capture works.
buffer(Config) ->
    {Rx, Port} = udp_receiver(),
    P = start(Config, ["-i", "lo", "-B", "4096", "-c", "2", "-n", "udp", "port", integer_to_list(Port)]),
    ok = wait_listening(P),
    send_udp(Port, 3, <<"buffered">>),
    {0, Out, _} = wait_exit(P, 20000),
    gen_udp:close(Rx),
    ?assertEqual(2, length(lines(Out))).

%% --immediate: the capture is in libpcap's immediate mode, and a packet
%% is printed while it runs, to a file too. What the flag changes is seen
%% in the kernel, not judged by a time (the default's 1 ms blocks deliver
%% within milliseconds as well): the packet socket of the dump's ewpcapd
%% has a TPACKET_V2 ring without a block timeout (ss: ver:1, tmo:0), where
%% the same capture without the flag has a TPACKET_V3 ring with libpcap's
%% 1 ms (ver:2, tmo:1), the control that the check tells them apart.
immediate(Config) ->
    {Rx, Port} = udp_receiver(),
    Took = [begin
                P = start(Config, Flags ++ ["-i", "lo", "-n", "udp", "port", integer_to_list(Port)]),
                ok = wait_listening(P),
                ?assertEqual({Flags, [Ring]}, {Flags, rings(P)}),
                T0 = erlang:monotonic_time(millisecond),
                send_udp(Port, 1, <<"now">>),
                ok = wait_until(fun() -> length(lines(read(out_file(P)))) =:= 1 end, ?READY_MS),
                T = erlang:monotonic_time(millisecond) - T0,
                {0, _, Err} = stop(P, "TERM"),
                ?assert(lists:member(<<"1 packet captured">>, lines(Err))),
                {Flags, T}
            end || {Flags, Ring} <- [{["--immediate"], {1, 0}}, {[], {2, 1}}]],
    gen_udp:close(Rx),
    ct:pal("printed after (ms): ~p", [Took]).

%% {TPACKET version, block timeout in ms} of each packet socket that the
%% ewpcapd below P holds (ss -0 -e -p: "ver:N" is the tp_version, 1 for
%% TPACKET_V2 and 2 for V3, and "tmo:N" of its ring_rx the retire timeout).
rings(#{pid := Pid}) ->
    Pids = [integer_to_list(D) || D <- descendants(Pid)],
    {0, Out, _} = cmd(["ss", "-0", "-a", "-e", "-p"]),
    rings(lines(Out), Pids, []).

rings([], _Pids, Acc) ->
    lists:reverse(Acc);
rings([L | Rest], Pids, Acc) ->
    {Block, After} = lists:splitwith(fun(<<"\t", _/binary>>) -> true; (_) -> false end, Rest),
    case re:run(L, <<"pid=(\\d+)">>, [{capture, all_but_first, list}]) of
        {match, [P]} ->
            case lists:member(P, Pids) of
                true ->
                    Text = iolist_to_binary(lists:join(<<" ">>, Block)),
                    {match, [V]} = re:run(Text, <<"ver:(\\d+)">>, [{capture, all_but_first, binary}]),
                    {match, [T]} = re:run(Text, <<"ring_rx\\([^)]*tmo:(\\d+)">>,
                                          [{capture, all_but_first, binary}]),
                    rings(After, Pids, [{binary_to_integer(V), binary_to_integer(T)} | Acc]);
                false ->
                    rings(After, Pids, Acc)
            end;
        nomatch ->
            rings(After, Pids, Acc)
    end.

%% The same traffic captured by tcpdump -U -w and ewpcap_dump -U -w: the
%% same packets, byte for byte; tcpdump and tshark read ewpcap_dump's file.
%% Both are stopped once each file holds the last packet of the traffic
%% (the second ICMPv6 echo reply); -U so that a file shows what its
%% capture has (without it, at exit: the snaplen case).
write_file_same_as_tcpdump(Config) ->
    need("tcpdump"),
    need("tshark"),
    Dir = ?config(priv_dir, Config),
    {Rx, UPort} = udp_receiver(),
    {ok, L} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}, binary, {active, false}, {reuseaddr, true}]),
    {ok, TPort} = inet:port(L),
    Id = rand:uniform(16#FFFF),
    Filter = lists:flatten(io_lib:format(
               "udp port ~b or tcp port ~b or (icmp and icmp[4:2] = ~b) or (icmp6 and ip6[44:2] = ~b)",
               [UPort, TPort, Id, Id])),
    Ours = filename:join(Dir, "ours.pcap"),
    Theirs = filename:join(Dir, "theirs.pcap"),
    T = start_cmd(["tcpdump", "-i", "lo", "-Z", "root", "-U", "-w", Theirs, Filter]),
    P = start(Config, ["-i", "lo", "-U", "-w", Ours, Filter]),
    ok = wait_listening(P),
    ok = wait_listening(T),
    send_udp(UPort, 3, <<"udp">>),
    send_udp6(UPort, 2, <<"udp6">>),
    tcp_exchange(L, TPort),
    ok = icmp_echo(Id, 2),
    ok = icmp6_echo(Id, 2),
    [?assertEqual({F, ok}, {F, wait_until(fun() -> icmp6_replies(F, Id) =:= 2 end, ?READY_MS)})
     || F <- [Theirs, Ours]],
    {0, <<>>, Err} = stop(P, "TERM"),
    {_, _, _} = stop(T, "TERM"),
    gen_udp:close(Rx),
    gen_tcp:close(L),
    {ok, 1, 262144, OurRecs} = ewpcap_pcap_file:read_file(Ours),
    {ok, 1, _, TheirRecs} = ewpcap_pcap_file:read_file(Theirs),
    ct:pal("ewpcap_dump: ~b packets, tcpdump: ~b packets~n~ts", [length(OurRecs), length(TheirRecs), Err]),
    ?assert(length(OurRecs) >= 3 + 2 + 8 + 4 + 4),
    ?assertEqual([{Len, Pkt} || {_, Len, Pkt} <- TheirRecs], [{Len, Pkt} || {_, Len, Pkt} <- OurRecs]),
    % timestamps of the two captures within a few ms of each other
    [?assert(abs(A - B) < 20000) || {{A, _, _}, {B, _, _}} <- lists:zip(OurRecs, TheirRecs)],
    ?assert(lists:member(iolist_to_binary(io_lib:format("~b packets captured", [length(OurRecs)])),
                         lines(Err))),
    % tcpdump and tshark read it
    {0, TText, _} = cmd(["tcpdump", "-n", "-r", Ours]),
    ?assertEqual(length(OurRecs), length(lines(TText))),
    {0, SText, _} = cmd(["tshark", "-n", "-r", Ours]),
    ?assertEqual(length(OurRecs), length(lines(SText))),
    % and ewpcap_dump prints what tcpdump prints
    {0, EText, _} = dump(Config, ["-n", "-r", Ours]),
    ?assertEqual(lines(TText), lines(EText)).

%% ICMPv6 echo replies with identifier Id in savefile F so far (0 while
%% it cannot be read: a record half written).
icmp6_replies(F, Id) ->
    case catch ewpcap_pcap_file:read_file(F) of
        {ok, 1, _, Recs} ->
            length([R || {_, _, <<_:12/binary, 16#86DD:16, _:6/binary, 58, _:33/binary,
                                 129, 0, _:16, I:16, _/binary>> = R} <- Recs, I =:= Id]);
        _ ->
            0
    end.

%% -w - into a pipe, read by tshark -r - (the Wireshark set-up of the
%% README with tshark in place of wireshark -k -i -).
write_stdout_to_tshark(Config) ->
    need("tshark"),
    {Rx, Port} = udp_receiver(),
    Dump = ?config(dump, Config),
    Cmd = lists:flatten(io_lib:format(
            "~s -i lo -c 6 -U -w - udp port ~b | tshark -r - -T fields -e udp.dstport -e udp.length",
            [Dump, Port])),
    P = start_sh(Cmd, ?config(priv_dir, Config)),
    ok = wait_listening(P),
    send_udp(Port, 6, <<"to tshark">>),
    {0, Out, Err} = wait_exit(P, 30000),
    gen_udp:close(Rx),
    ct:pal("~ts", [Err]),
    % udp.length, not data.len: the random port may be one a dissector of
    % tshark's claims, and then the payload is not "data" (seen in CI)
    Expect = iolist_to_binary(io_lib:format("~b\t17", [Port])),
    ?assertEqual(lists:duplicate(6, Expect), lines(Out)).

%% -U: each packet reaches the file when captured; without -U the file is
%% written per 64 KiB (and at the end).
unbuffered(Config) ->
    Dir = ?config(priv_dir, Config),
    {Rx, Port} = udp_receiver(),
    Filter = ["udp", "port", integer_to_list(Port)],
    U = filename:join(Dir, "unbuffered.pcap"),
    B = filename:join(Dir, "buffered.pcap"),
    PU = start(Config, ["-i", "lo", "--immediate", "-U", "-w", U | Filter]),
    PB = start(Config, ["-i", "lo", "--immediate", "-w", B | Filter]),
    ok = wait_listening(PU),
    ok = wait_listening(PB),
    send_udp(Port, 2, <<"now">>),
    Size = 24 + 2 * (16 + 14 + 20 + 8 + 3),
    ok = wait_until(fun() -> filelib:file_size(U) =:= Size end, 5000),
    % the buffered file holds only the global header, written at once
    ?assertEqual(24, filelib:file_size(B)),
    {0, _, _} = stop(PU, "TERM"),
    {0, _, _} = stop(PB, "TERM"),
    gen_udp:close(Rx),
    ?assertEqual(Size, filelib:file_size(B)),
    {ok, 1, _, RU} = ewpcap_pcap_file:read_file(U),
    {ok, 1, _, RB} = ewpcap_pcap_file:read_file(B),
    ?assertEqual([P || {_, _, P} <- RU], [P || {_, _, P} <- RB]).

%% A file tcpdump wrote, read by ewpcap_dump: the same records (times
%% included), the same text.
read_tcpdump_file(Config) ->
    need("tcpdump"),
    Dir = ?config(priv_dir, Config),
    {Rx, Port} = udp_receiver(),
    Theirs = filename:join(Dir, "tcpdump.pcap"),
    T = start_cmd(["tcpdump", "-i", "lo", "-Z", "root", "-c", "4", "-w", Theirs,
                   "udp port " ++ integer_to_list(Port)]),
    ok = wait_listening(T),
    send_udp(Port, 4, <<"from tcpdump">>),
    {0, _, _} = wait_exit(T, 20000),
    gen_udp:close(Rx),
    Copy = filename:join(Dir, "copy.pcap"),
    {0, <<>>, _} = dump(Config, ["-r", Theirs, "-w", Copy]),
    {ok, 1, _, TheirRecs} = ewpcap_pcap_file:read_file(Theirs),
    ?assertEqual(4, length(TheirRecs)),
    ?assertMatch({ok, 1, _, TheirRecs}, ewpcap_pcap_file:read_file(Copy)),
    ?assertEqual(read(Theirs), read(Copy)),
    {0, TText, _} = cmd(["tcpdump", "-n", "-r", Theirs]),
    {0, EText, _} = dump(Config, ["-n", "-r", Theirs]),
    ?assertEqual(lines(TText), lines(EText)).

%% SIGTERM (and SIGHUP) end a capture as the count does.
sigterm_stats(Config) ->
    lists:foreach(
      fun(Sig) ->
              {Rx, Port} = udp_receiver(),
              P = start(Config, ["-i", "lo", "-n", "udp", "port", integer_to_list(Port)]),
              ok = wait_listening(P),
              send_udp(Port, 3, <<"term">>),
              ok = wait_until(fun() -> length(lines(read(out_file(P)))) =:= 3 end, 5000),
              {0, Out, Err} = stop(P, Sig),
              gen_udp:close(Rx),
              ?assertEqual(3, length(lines(Out))),
              ?assertMatch([_, <<"3 packets captured">>, _, _], lines(Err))
      end, ["TERM", "HUP"]).

%% Ctrl-C in a terminal (script(1) gives it a pty): the statistics, status
%% 0.
ctrl_c_in_terminal(Config) ->
    need("script"),
    {Rx, Port} = udp_receiver(),
    Cmd = lists:flatten(io_lib:format("~s -n -i lo udp port ~b", [?config(dump, Config), Port])),
    {Pty, Acc0} = start_pty(Cmd),
    {ok, Acc1} = pty_wait(Pty, Acc0, <<"listening on lo">>, ?READY_MS),
    send_udp(Port, 2, <<"ctrl-c">>),
    {ok, Acc2} = pty_wait(Pty, Acc1, <<"UDP, length 6\r\n">>, 5000, 2),
    true = port_command(Pty, <<3>>),
    {Status, Acc3} = pty_exit(Pty, Acc2, 20000),
    gen_udp:close(Rx),
    ct:pal("~ts", [Acc3]),
    ?assertEqual(0, Status),
    ?assertNotEqual(nomatch, binary:match(Acc3, <<"2 packets captured\r\n">>)),
    ?assertNotEqual(nomatch, binary:match(Acc3, <<"packets received by filter\r\n">>)).

%% -w FILE with stderr on a terminal: a live count, as dumpcap shows.
live_count_on_terminal(Config) ->
    need("script"),
    {Rx, Port} = udp_receiver(),
    File = filename:join(?config(priv_dir, Config), "live.pcap"),
    Cmd = lists:flatten(io_lib:format("~s -i lo -w ~s udp port ~b", [?config(dump, Config), File, Port])),
    {Pty, Acc0} = start_pty(Cmd),
    {ok, Acc1} = pty_wait(Pty, Acc0, <<"listening on lo">>, ?READY_MS),
    send_udp(Port, 3, <<"live">>),
    {ok, Acc2} = pty_wait(Pty, Acc1, <<"Packets: 3  Bytes: ">>, 10000),
    true = port_command(Pty, <<3>>),
    {0, Acc3} = pty_exit(Pty, Acc2, 20000),
    gen_udp:close(Rx),
    ?assertNotEqual(nomatch, binary:match(Acc3, <<"Dropped: 0">>)),
    ?assertNotEqual(nomatch, binary:match(Acc3, <<"3 packets captured">>)),
    {ok, 1, _, Recs} = ewpcap_pcap_file:read_file(File),
    ?assertEqual(3, length(Recs)).

%%% -------------------------------------------------------------------
%%% netns: a second daemon (-N, --cookie), promiscuous mode
%%% -------------------------------------------------------------------

%% -N NODE --cookie C through the suite's daemon inside namespace A: the
%% ARP exchange and a datagram from A to B, as tcpdump sees them there.
remote_cookie(Config) ->
    need("tcpdump"),
    NsA = ?config(ns_a, Config),
    Node = atom_to_list(?config(ns_node, Config)),
    Dir = ?config(priv_dir, Config),
    Ours = filename:join(Dir, "remote.pcap"),
    Theirs = filename:join(Dir, "remote-tcpdump.pcap"),
    ok = flush_neigh(NsA),
    T = start_cmd(["ip", "netns", "exec", NsA, "tcpdump", "-i", "ewpd0", "-Z", "root", "-U",
                   "-c", "3", "-w", Theirs, "udp or arp"]),
    P = start(Config, ["-N", Node, "--cookie", ?config(ns_cookie, Config), "-i", "ewpd0",
                       "-n", "-c", "3", "udp", "or", "arp"]),
    ok = wait_listening(P),
    ok = wait_listening(T),
    {0, _, _} = cmd(["ip", "netns", "exec", NsA, "bash", "-c", "echo hi > /dev/udp/10.199.0.2/9999"]),
    {0, Out, Err} = wait_exit(P, 20000),
    {0, _, _} = wait_exit(T, 20000),
    ct:pal("~ts~ts", [Out, Err]),
    [Req, Rep, Udp] = lines(Out),
    ?assertMatch(<<_:15/binary, " ARP, Request who-has 10.199.0.2 tell 10.199.0.1, length 28">>, Req),
    ?assertMatch({match, _}, re:run(Rep, <<" ARP, Reply 10.199.0.2 is-at ([0-9a-f]{2}:){5}[0-9a-f]{2}, length 28$">>)),
    ?assertMatch({match, _}, re:run(Udp, <<" IP 10.199.0.1.\\d+ > 10.199.0.2.9999: UDP, length 3$">>)),
    ?assertMatch([<<"listening on ewpd0, link-type EN10MB (Ethernet)", _/binary>> | _], lines(Err)),
    {0, TText, _} = cmd(["tcpdump", "-n", "-r", Theirs]),
    ?assertEqual([strip_time(L) || L <- lines(TText)], [strip_time(L) || L <- lines(Out)]),
    % the same through -w
    {0, <<>>, _} = dump(Config, ["-N", Node, "--cookie", ?config(ns_cookie, Config), "-i", "ewpd0",
                                 "-c", "1", "-w", Ours, "udp"],
                        [{after_start, fun() ->
                                               % listening (after_start waits
                                               % for the line): the daemon
                                               % holds the handle
                                               ok = wait_until(fun() -> ns_handle(Config, <<"udp">>) end,
                                                               ?READY_MS),
                                               cmd(["ip", "netns", "exec", NsA, "bash", "-c",
                                                    "echo hi > /dev/udp/10.199.0.2/9999"])
                                       end}]),
    {ok, 1, _, [{_, 45, _}]} = ewpcap_pcap_file:read_file(Ours).

%% Does the suite's daemon in namespace A hold a handle on ewpd0 with
%% Filter (asked with its cookie)?
ns_handle(Config, Filter) ->
    Node = ?config(ns_node, Config),
    true = erlang:set_cookie(Node, list_to_atom(?config(ns_cookie, Config))),
    case ewpcap:info(Node) of
        {ok, Info} ->
            lists:any(fun(H) -> proplists:get_value(device, H) =:= "ewpd0" andalso
                                    proplists:get_value(filter, H) =:= Filter
                      end, proplists:get_value(handles, Info));
        _ ->
            false
    end.

%% A wrong cookie: the daemon cannot be reached, status 1, one line.
remote_bad_cookie(Config) ->
    Node = atom_to_list(?config(ns_node, Config)),
    {1, <<>>, Err} = dump(Config, ["-N", Node, "--cookie", "not-the-cookie", "-i", "ewpd0", "-c", "1"]),
    ?assertEqual([iolist_to_binary(["ewpcap_dump: cannot reach ", Node,
                                    " (not running, or another cookie?)"])], lines(Err)).

%% Promiscuous by default, not with -p: the interface's promiscuity count
%% while each runs.
promisc_default_and_off(Config) ->
    NsA = ?config(ns_a, Config),
    Node = atom_to_list(?config(ns_node, Config)),
    ?assertEqual(0, promiscuity(NsA, "ewpd0")),
    lists:foreach(
      fun({Flags, Expect}) ->
              P = start(Config, ["-N", Node, "--cookie", ?config(ns_cookie, Config), "-i", "ewpd0"
                                 | Flags] ++ ["udp", "port", "9"]),
              ok = wait_listening(P),
              ?assertEqual({Flags, Expect}, {Flags, promiscuity(NsA, "ewpd0")}),
              {0, _, _} = stop(P, "TERM"),
              ok = wait_until(fun() -> promiscuity(NsA, "ewpd0") =:= 0 end, 5000)
      end, [{[], 1}, {["-p"], 0}]).

promiscuity(NS, Dev) ->
    {0, Out, _} = cmd(["ip", "-n", NS, "-d", "link", "show", Dev]),
    {match, [N]} = re:run(Out, <<"promiscuity (\\d+)">>, [{capture, all_but_first, binary}]),
    binary_to_integer(N).

flush_neigh(NS) ->
    {_, _, _} = cmd(["ip", "-n", NS, "neigh", "flush", "dev", "ewpd0"]),
    ok.

strip_time(<<_:15/binary, " ", Rest/binary>>) -> Rest.
