#!/usr/bin/env escript
%%% Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
%%%
%%% Writes the seed corpus of the libFuzzer targets in test/fuzz/:
%%%
%%%   escript test/fuzz/make_corpus.escript test/fuzz/corpus   (make fuzz-corpus)
%%%
%%% fuzz_decode/     one gen_server call per request shape and option of
%%%                  docs/PROTOCOL.md, as term_to_binary bytes (131 first);
%%%                  fuzz_dispatch reads these too (131 = a message to ewpcap)
%%% fuzz_dispatch/   inputs for the other operations of fuzz_dispatch.c
%%%                  (first byte: N R E L D F P M C J X S)
%%% fuzz_handshake/  a send_name, and a send_name with its challenge reply
%%% fuzz_atomcache/  frames with the distribution header (each behind a
%%%                  2-byte length): a call with new cache entries and then
%%%                  by index, LongAtoms, segment 7, a packet head of ours
%%% fuzz_demux/      runs of members of one filter shape and odd ones, then
%%%                  packets that hit their constants (the operations of
%%%                  fuzz_demux.c), on Ethernet, Linux SLL and raw IP; the
%%%                  found-* files beside them (inputs a fuzzing run found
%%%                  that reach code the seeds do not) are kept
%%%
%%% No distribution is needed: the pids and refs of the client node
%%% 'fuzz@host' and of the daemon 'ewpcap@host' are built from their
%%% external format (NEW_PID_EXT, NEWER_REFERENCE_EXT). The daemon's values
%%% match fuzz_dispatch.c: creation 16#5eed, and refs and pids counted from
%%% 0 after each reset, so ?HANDLE_REF/?HANDLE_PID name the first handle
%%% opened. The cookie and challenge match fuzz_handshake.c.
-mode(compile).

-define(CLIENT, <<"fuzz@host">>).
-define(DAEMON, <<"ewpcap@host">>).
-define(DAEMON_CREATION, 16#5eed).
-define(COOKIE, "EWPFUZZCOOKIE").
-define(CHALLENGE, 16#5eed1234).

main([Dir]) ->
    Decode = filename:join(Dir, "fuzz_decode"),
    Dispatch = filename:join(Dir, "fuzz_dispatch"),
    Handshake = filename:join(Dir, "fuzz_handshake"),
    AtomCache = filename:join(Dir, "fuzz_atomcache"),
    Demux = filename:join(Dir, "fuzz_demux"),
    [clean(D) || D <- [Decode, Dispatch, Handshake, AtomCache]],
    clean(Demux, "found-"),
    [write(Decode, Name, call(Req)) || {Name, Req} <- requests()],
    [write(Dispatch, Name, Bin) || {Name, Bin} <- dispatch()],
    [write(Handshake, Name, Bin) || {Name, Bin} <- handshake()],
    [write(AtomCache, Name, Bin) || {Name, Bin} <- atomcache()],
    [write(Demux, Name, Bin) || {Name, Bin} <- demux()],
    ok;
main(_) ->
    io:format(standard_error, "usage: make_corpus.escript CorpusDir~n", []),
    halt(2).

%%% Requests: every request and every option of docs/PROTOCOL.md

requests() ->
    Ref = handle_ref(),
    [{"open", {open, <<"fake0">>, []}},
     {"open_default_dev", {open, <<>>, []}},
     {"open_owner", {open, <<"fake0">>, [], pid(?CLIENT, 101)}},
     {"open_no_such_dev", {open, <<"eth9">>, []}},
     {"open_snaplen", {open, <<"fake0">>, [{snaplen, 96}]}},
     {"open_promisc", {open, <<"fake0">>, [{promisc, true}]}},
     {"open_timeout_immediate", {open, <<"fake0">>, [{timeout, immediate}]}},
     {"open_timeout_infinity", {open, <<"fake0">>, [{timeout, infinity}]}},
     {"open_timeout_ms", {open, <<"fake0">>, [{timeout, 500}]}},
     {"open_to_ms", {open, <<"fake0">>, [{to_ms, 100}]}},
     {"open_immediate", {open, <<"fake0">>, [{immediate, false}]}},
     {"open_buffer", {open, <<"fake0">>, [{buffer, 1048576}]}},
     {"open_monitor", {open, <<"fake0">>, [{monitor, true}]}},
     {"open_time_unit", {open, <<"fake0">>, [{time_unit, microsecond}]}},
     {"open_filter_binary", {open, <<"fake0">>, [{filter, <<"tcp port 80">>}]}},
     {"open_filter_string", {open, <<"fake1">>, [{filter, "udp"}]}},
     {"open_optimize", {open, <<"fake0">>, [{optimize, false}]}},
     {"open_netmask", {open, <<"fake0">>, [{netmask, 16#ffffff00}]}},
     {"open_netmask_tuple", {open, <<"fake0">>, [{netmask, {255, 255, 255, 0}}]}},
     {"open_limit", {open, <<"fake0">>, [{limit, -1}, {filter, <<"bad">>}]}},
     {"open_batch", {open, <<"fake0">>, [{batch, 8}]}},
     {"open_all_options",
      {open, <<"fake1">>,
       [{snaplen, 65535}, {promisc, false}, {timeout, 10}, {immediate, true},
        {buffer, 0}, {monitor, false}, {time_unit, timestamp}, {filter, "ip"},
        {optimize, true}, {netmask, 0}, {limit, 8192}, {batch, 1}],
       pid(?CLIENT, 102)}},
     {"open_file", {open_file, <<"in.pcap">>, [{batch, 2}]}},
     {"open_file_owner", {open_file, "sub/../in.pcap", [], pid(?CLIENT, 101)}},
     {"open_file_escape", {open_file, <<"escape/passwd">>, []}},
     {"open_dump", {open, <<"fake0">>, [{dump, <<"out.pcap">>}]}},
     {"close", {close, Ref}},
     {"filter", {filter, Ref, <<"icmp">>,
                 [{optimize, true}, {netmask, {255, 0, 0, 0}}, {limit, 100}]}},
     {"filter_string_bad", {filter, Ref, "bad", []}},
     {"write", {write, Ref, list_to_binary(lists:seq(0, 59))}},
     {"stats", {stats, Ref}},
     {"dev", dev},
     {"getifaddrs", getifaddrs},
     {"info", info}].

%%% fuzz_dispatch's other operations

dispatch() ->
    From = from(),
    HandlePid = handle_pid(),
    GL = pid(?CLIENT, 50),
    ReqId = ref(?CLIENT, 1, [21, 22, 23]),
    Open = call({open, <<"fake0">>, [{batch, 4}, {time_unit, microsecond}]}),
    Packets = packets(0, [{60, 4}, {1514, 0}, {0, 0}, {42, 20}, {90, 0}]),
    Large = iolist_to_binary(["tcp port 1", [[" or tcp port ", integer_to_list(N)]
                                             || N <- lists:seq(2, 80)]]),
    [{"net_kernel_is_auth", <<"N", (call({is_auth, 'fuzz@host'}))/binary>>},
     {"rex_block_call",
      <<"R", (call({block_call, ewpcap, open, [<<"fake0">>, []], GL}))/binary>>},
     {"exit", <<"E", (t2b({3, From, HandlePid, normal}))/binary>>},
     {"link", <<"L", (t2b({1, From, HandlePid}))/binary>>},
     {"peer_down", <<"D", 0>>},
     {"packets", packets(0, [{60, 0}, {128, 64}, {14, 0}])},
     {"congestion", <<"C", 1>>},
     {"frame_spawn_request",
      frame({29, ReqId, From, GL, {erpc, execute_call, 4}, [monitor]},
            [ReqId, ewpcap, open, [<<"fake0">>, [{snaplen, 128}]]])},
     {"frame_monitor_exit",
      frame({21, From, HandlePid, ref(?DAEMON, ?DAEMON_CREATION, [1, 0, 0]), normal})},
     {"frame_unlink_id", frame({35, 7, From, HandlePid})},
     {"sequence",
      sequence([Open, Packets, call({stats, handle_ref()}), call(info),
                <<"C", 1>>, Packets, <<"C", 0>>, call({close, handle_ref()})])},
     {"sequence_savefile",
      sequence([call({open_file, <<"in.pcap">>, []}), Packets, <<"P", 0, 0, 2>>,
                call({stats, handle_ref()}), call({close, handle_ref()})])},
     %% filters longer than EWP_COMPILE_SYNC_MAX wait for the worker ('J')
     {"sequence_compile",
      sequence([call({open, <<"fake0">>, []}),
                call({filter, handle_ref(), Large, []}),
                call({close, handle_ref()}),
                <<"J", 0>>,
                call({open, <<"fake1">>, [{filter, Large}, {batch, 2}]}),
                <<"D", 0>>,
                <<"J", 0>>])}
     | shared() ++ fail()].

%% 'M': packets for a shared capture, whose members (in the order opened)
%% are handles of both nodes on fake0 with the same capture options: node
%% 0's {batch, 4}, node 1's {batch, 4}, node 0's {batch, 8}, node 1's one
%% packet per message. Both nodes' batches are built in place in one
%% dispatch; node 0's two contend (the {batch, 8} one gathers in its own
%% buffer, its close cuts the other's frame short).
shared() ->
    Open = fun(Opts) -> call({open, <<"fake0">>, Opts}) end,
    Other = pid(<<"other@host">>, 5),
    OtherOpen = fun(Opts) ->
                        <<"f", "p", (t2b({6, Other, '', ewpcap}))/binary,
                          (t2b({'$gen_call', {Other, tag()}, {open, <<"fake0">>, Opts}}))/binary>>
                end,
    Members = [Open([{batch, 4}]), OtherOpen([{batch, 4}]), Open([{batch, 8}]), OtherOpen([])],
    All = shared(0, [{2#1111, 60, 0} || _ <- lists:seq(1, 5)] ++
                     [{2#0101, 90, 4}, {2#0101, 42, 0}, {2#0110, 1514, 0}, {2#1010, 14, 0},
                      {2#0001, 128, 64}, {2#0100, 60, 0}, {2#1111, 0, 0}]),
    Info = call(info),
    [{"shared_batches", sequence(Members ++ [All, Info, All, shared(1, [{2#1111, 60, 0}]), Info])},
     %% node 0 congested: its first commit pauses its members, node 1's read on
     {"shared_congested",
      sequence(Members ++ [<<"C", 1>>, All, Info, <<"C", 0>>, All, Info])},
     %% node 1 dropped at its second frame, while node 0's batch is open
     {"shared_fail", sequence(Members ++ [fail(1, 1, All), Info, All])}].

%% 'X' [peer, n - 1, Input]: the n-th next send (or fresh reserve) to the
%% peer fails and drops it, as dist.c's send does when the peer's output
%% buffer is full; its teardown (peer_down) comes after the step.
fail() ->
    From = from(),
    GL = pid(?CLIENT, 50),
    Other = pid(<<"other@host">>, 5),
    ReqId = ref(?CLIENT, 1, [21, 22, 23]),
    Open = call({open, <<"fake0">>, [{batch, 4}]}),
    Close = call({close, handle_ref()}),
    Info = call(info),
    Packets = packets(0, [{60, 4}, {1514, 0}, {42, 20}]),
    Large = iolist_to_binary(["tcp port 1", [[" or tcp port ", integer_to_list(N)]
                                             || N <- lists:seq(2, 80)]]),
    Spawn = frame({29, ReqId, From, GL, {erpc, execute_call, 4}, [monitor]},
                  [ReqId, ewpcap, open, [<<"fake0">>, [{snaplen, 128}]]]),
    [%% close: the UNLINK_ID, then the reply
     {"fail_close_unlink", sequence([Open, Open, fail(0, 0, Close), Packets, Info])},
     {"fail_close_reply", sequence([Open, fail(0, 1, Close), Info])},
     %% open: the LINK (the handle is in the table: the teardown closes it)
     {"fail_open_link", sequence([Open, fail(0, 0, Open), Packets, Info])},
     {"fail_open_reply", sequence([fail(0, 1, Open), Packets, Info])},
     %% a deferred compile's reply, for a filter, an open, a refused open
     {"fail_compile_filter",
      sequence([Open, call({filter, handle_ref(), Large, []}), fail(0, 0, <<"J", 0>>),
                Packets, Info])},
     {"fail_compile_open",
      sequence([call({open, <<"fake0">>, [{filter, Large}]}), fail(0, 0, <<"J", 0>>), Info])},
     {"fail_compile_refused",
      sequence([call({open, <<"fake1">>, [{filter, Large}]}), Open,
                fail(0, 0, <<"J", 0>>), Info])},
     %% a read error, a vanished interface, the end of a savefile
     {"fail_error", sequence([Open, fail(0, 0, <<"P", 0, 0, 1>>), Packets, Info])},
     {"fail_vanish", sequence([Open, Open, fail(0, 0, <<"P", 1, 0, 4>>), Info])},
     {"fail_eof",
      sequence([call({open_file, <<"in.pcap">>, []}), fail(0, 0, <<"P", 0, 0, 2>>), Info])},
     %% packets: the reserve of a frame
     {"fail_packets", sequence([Open, Open, fail(0, 1, Packets), Packets, Info])},
     %% rpc: MONITOR_P, SPAWN_REPLY, the result; rex's reply
     {"fail_spawn_monitor", sequence([fail(0, 0, Spawn), Packets, Info])},
     {"fail_spawn_reply", sequence([fail(0, 1, Spawn), Info])},
     {"fail_spawn_result", sequence([fail(0, 2, Spawn), Info])},
     {"fail_rex",
      sequence([fail(0, 1, <<"R", (call({block_call, ewpcap, open, [<<"fake0">>, []], GL}))/binary>>),
                Info])},
     %% the other node's failure leaves node 0's handles alone
     {"fail_other",
      sequence([Open, fail(1, 0, <<"f", "p", (t2b({6, Other, '', ewpcap}))/binary,
                                     (t2b({'$gen_call', {Other, tag()}, info}))/binary>>),
                Packets, Info])},
     %% a congested node's queue passes the cap: the send drops it
     {"fail_queue_full",
      sequence([Open, Open, Open, Open, <<"C", 1>>, Packets, Packets]
               ++ lists:duplicate(24, Info) ++ [<<"C", 0>>, Packets, Info])}].

fail(Peer, N, Input) -> <<"X", Peer, N, Input/binary>>.

%% 'P' [capture, count - 1, flags] then [caplen:16, extra:8, sec:32, usec:24, bytes]
packets(Flags, Ps) ->
    Body = << <<Len:16, Extra:8, 1700000000:32, 123456:24, (payload(Len))/binary>>
             || {Len, Extra} <- Ps >>,
    <<"P", 0, (length(Ps) - 1), Flags, Body/binary>>.

%% 'M' [capture, count - 1, flags] then [members, caplen:16, extra:8, sec:32, usec:24, bytes]
shared(Flags, Ps) ->
    Body = << <<Members, Len:16, Extra:8, 1700000000:32, 123456:24, (payload(Len))/binary>>
             || {Members, Len, Extra} <- Ps >>,
    <<"M", 0, (length(Ps) - 1), Flags, Body/binary>>.

payload(Len) -> << <<(N band 255)>> || N <- lists:seq(1, Len) >>.

%% 'F' and a whole frame body: 'p', 131, Control, [131, Message]
frame(Control) -> <<"F", "p", (t2b(Control))/binary>>.
frame(Control, Msg) -> <<(frame(Control))/binary, (t2b(Msg))/binary>>.

sequence(Inputs) -> <<"S", << <<(byte_size(I)):16, I/binary>> || I <- Inputs >>/binary>>.

%%% Handshake: N = 0 cuts, then the stream

handshake() ->
    Flags = 16#4 bor 16#8 bor 16#10 bor 16#80 bor 16#100 bor 16#200 bor 16#400
        bor 16#800 bor 16#4000 bor 16#10000 bor 16#20000 bor 16#40000
        bor 16#1000000 bor 16#2000000 bor 16#4000000 bor (16#1 bsl 32) bor (16#4 bsl 32),
    Name = ?CLIENT,
    SendName = packet(<<"N", Flags:64, 7:32, (byte_size(Name)):16, Name/binary>>),
    Digest = erlang:md5([?COOKIE, integer_to_list(?CHALLENGE)]),
    Reply = packet(<<"r", 16#c0ffee:32, Digest/binary>>),
    [{"send_name", <<0, SendName/binary>>},
     {"handshake", <<0, SendName/binary, Reply/binary>>},
     {"handshake_split", <<3, 1, 20, 2, SendName/binary, Reply/binary>>}].

packet(Body) -> <<(byte_size(Body)):16, Body/binary>>.

%%% The distribution header: frames behind 2-byte lengths

atomcache() ->
    Ctl = {6, from(), '', ewpcap},
    Msg = {'$gen_call', {from(), tag()}, info},
    Long = binary:copy(<<"é"/utf8>>, 150),
    [{"call_new_then_old",
      <<(packet(header_frame(Ctl, Msg, 0, new)))/binary,
        (packet(header_frame(Ctl, Msg, 0, old)))/binary>>},
     {"call_segment_7", packet(header_frame(Ctl, Msg, 7, new))},
     {"long_atom", packet(<<131, 68, 1, 16#18, 3, 300:16, Long/binary, 104, 1, 82, 0>>)},
     {"spelled_out", packet(<<131, 68, 0, (body(Ctl))/binary, (body(Msg))/binary>>)},
     {"packet_head",
      packet(<<"p", (t2b({2, '', from()}))/binary, 131, 104, 6, (atom_ext(<<"ewpcap">>))/binary,
               (body(handle_ref()))/binary, 97, 1>>)}].

%%% fuzz_demux: link type (0 Ethernet, 1 Linux SLL, 2 raw IP), then
%%% operations: 0 set one member, 1 remove one, 2 a packet, 3 a run of
%%% members of one template with constants A, A+1, ... (see fuzz_demux.c)

demux() ->
    Udp = fun(L, V6, S, D) -> dm_packet(L, V6, 17, 16#0a000001, 16#0a000002, S, D) end,
    Tcp = fun(L, S, D) -> dm_packet(L, false, 6, 16#0a020005, 16#0a0103e9, S, D) end,
    [{"udp_dst_ports_" ++ integer_to_list(L),
      <<L, (dm_run(0, 1000, 0, 60))/binary, (dm_set(0, 0, 1010, 0))/binary,
        (dm_pkt(Udp(L, false, 53, 1010)))/binary, (dm_pkt(Udp(L, true, 53, 1040)))/binary,
        (dm_pkt(Udp(L, false, 54, 1010)))/binary, (dm_cut(Udp(L, false, 53, 1010), 40))/binary>>}
     || L <- [0, 1, 2]] ++
    [{"hosts_and_ports",
      <<0, (dm_run(4, 1000, 5, 40))/binary, (dm_run(1, 1, 0, 10))/binary,
        (dm_set(1, 3, 5, 1))/binary, (dm_set(2, 4, 1000, 6))/binary,
        (dm_pkt(Tcp(0, 1020, 1005)))/binary,
        (dm_pkt(Udp(0, false, 1, 2)))/binary>>},
     {"odd_ones",
      <<0, (dm_run(5, 1000, 0, 20))/binary,
        << <<(dm_set(I, T, 100, 1))/binary>> || {I, T} <- [{0, 7}, {1, 8}, {2, 9}, {3, 10},
                                                           {4, 11}, {5, 12}, {6, 13}, {7, 14},
                                                           {8, 15}] >>/binary,
        (dm_pkt(Udp(0, false, 53, 1005)))/binary, (dm_pkt(Tcp(0, 53, 1019)))/binary,
        (dm_cut(Tcp(0, 53, 1019), 20))/binary>>},
     {"src_and_dst_ports",
      <<0, (dm_run(0, 1000, 0, 40))/binary, (dm_set(0, 0, 1005, 1))/binary,
        (dm_set(1, 0, 1006, 2))/binary, (dm_pkt(Udp(0, false, 53, 1010)))/binary,
        (dm_pkt(Udp(0, false, 54, 1005)))/binary, (dm_pkt(Udp(0, true, 55, 1006)))/binary>>},
     {"set_remove_between",
      <<0, (dm_run(2, 1000, 0, 30))/binary, (dm_pkt(Tcp(0, 1003, 80)))/binary,
        1, 35, (dm_set(3, 2, 1003, 0))/binary, (dm_pkt(Tcp(0, 1003, 80)))/binary,
        (dm_run(6, 1000, 0, 10))/binary, (dm_pkt(Udp(0, true, 7, 1003)))/binary>>}].

dm_set(Slot, T, A, B) -> <<0, Slot, T, A:16, B>>.

dm_run(T, A, B, N) -> <<3, T, A:16, B, N>>.

dm_pkt(P) -> <<2, 255, 0, (byte_size(P)):16, P/binary>>.

%% P cut to Caplen bytes, its wire length still all of it
dm_cut(P, Caplen) -> <<2, Caplen, 0, (byte_size(P)):16, P/binary>>.

%% IPv4 or IPv6 over Ethernet (0), Linux SLL (1) or nothing (2); ports, 8 bytes of payload
dm_packet(Link, V6, Proto, Src, Dst, Sport, Dport) ->
    L4 = case Proto of
             17 -> <<Sport:16, Dport:16, 16:16, 0:16, 0:64>>;
             6 -> <<Sport:16, Dport:16, 0:32, 0:32, 5:4, 0:4, 2, 1024:16, 0:16, 0:16, 0:64>>
         end,
    {Type, Ip} = case V6 of
                     false -> {16#0800, <<16#45, 0, (20 + byte_size(L4)):16, 0:32, 64, Proto, 0:16,
                                          Src:32, Dst:32, L4/binary>>};
                     true -> {16#86dd, <<6:4, 0:28, (byte_size(L4)):16, Proto, 64, 0:96, Src:32,
                                         0:96, Dst:32, L4/binary>>}
                 end,
    case Link of
        0 -> <<2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, Type:16, Ip/binary>>;
        1 -> <<0:16, 1:16, 6:16, 0:64, Type:16, Ip/binary>>;
        2 -> Ip
    end.

%% Every atom of Ctl and Msg as a reference: entries Segment * 256 + 0..,
%% all new or all old
header_frame(Ctl, Msg, Segment, Kind) ->
    {Terms, Atoms} = refs([body(Ctl), body(Msg)]),
    N = length(Atoms),
    Half = case Kind of new -> 8; old -> 0 end bor Segment,
    Flags = flag_bytes([Half || _ <- Atoms] ++ [0]),
    Entries = [case Kind of
                   new -> <<I, (byte_size(A)), A/binary>>;
                   old -> <<I>>
               end || {I, A} <- lists:zip(lists:seq(0, N - 1), Atoms)],
    iolist_to_binary([131, 68, N, Flags, Entries, Terms]).

flag_bytes([Lo, Hi | T]) -> [(Hi bsl 4) bor Lo | flag_bytes(T)];
flag_bytes([Lo]) -> [Lo];
flag_bytes([]) -> [].

%% The SMALL_ATOM_UTF8_EXTs of terms replaced by ATOM_CACHE_REFs (these
%% terms hold no other byte 119 at a token's start that is not an atom:
%% small integers, pids and refs of the names above)
refs(Bins) ->
    lists:foldl(fun(B, {Out, As}) ->
                        {O, As1} = refs(B, As, []),
                        {[Out, O], As1}
                end, {[], []}, Bins).

refs(<<>>, As, Acc) ->
    {lists:reverse(Acc), As};
refs(<<119, L, A:L/binary, R/binary>>, As, Acc) ->
    {I, As1} = case string:str([X || X <- As], [A]) of
                   0 -> {length(As), As ++ [A]};
                   P -> {P - 1, As}
               end,
    refs(R, As1, [<<82, I>> | Acc]);
refs(<<97, X, R/binary>>, As, Acc) -> refs(R, As, [<<97, X>> | Acc]);
refs(<<88, R/binary>>, As, Acc) ->
    <<119, L, A:L/binary, Rest:12/binary, R1/binary>> = R,
    {[Ref], As1} = refs(<<119, L, A/binary>>, As, []),
    refs(R1, As1, [[88, Ref, Rest] | Acc]);
refs(<<90, N:16, R/binary>>, As, Acc) ->
    <<119, L, A:L/binary, R0/binary>> = R,
    K = 4 + 4 * N,
    <<Rest:K/binary, R1/binary>> = R0,
    {[Ref], As1} = refs(<<119, L, A/binary>>, As, []),
    refs(R1, As1, [[90, <<N:16>>, Ref, Rest] | Acc]);
refs(<<T, R/binary>>, As, Acc) when T =:= 104; T =:= 106 ->
    case T of
        104 -> <<X, R1/binary>> = R, refs(R1, As, [<<104, X>> | Acc]);
        106 -> refs(R, As, [<<106>> | Acc])
    end;
refs(<<108, N:32, R/binary>>, As, Acc) -> refs(R, As, [<<108, N:32>> | Acc]).

body(T) ->
    <<131, B/binary>> = t2b(T),
    B.

%%% Terms

%% As an OTP 25 node sends it: atoms as SMALL_ATOM_UTF8_EXT
t2b(Term) -> term_to_binary(Term, [{minor_version, 2}]).

call(Req) -> t2b({'$gen_call', {from(), tag()}, Req}).

from() -> pid(?CLIENT, 100).

%% OTP 25 gen:call's Tag: [alias | Mref]
tag() -> [alias | ref(?CLIENT, 1, [7, 8, 9])].

handle_ref() -> ref(?DAEMON, ?DAEMON_CREATION, [0, 0, 0]).

handle_pid() -> pid(?DAEMON, ?DAEMON_CREATION, 0).

pid(Node, Id) -> pid(Node, 1, Id).

%% NEW_PID_EXT: 88, Node, ID:32, Serial:32, Creation:32
pid(Node, Creation, Id) ->
    binary_to_term(<<131, 88, (atom_ext(Node))/binary, Id:32, 0:32, Creation:32>>).

%% NEWER_REFERENCE_EXT: 90, Len:16, Node, Creation:32, ID:32 * Len
ref(Node, Creation, Ids) ->
    binary_to_term(<<131, 90, (length(Ids)):16, (atom_ext(Node))/binary, Creation:32,
                     << <<I:32>> || I <- Ids >>/binary>>).

%% SMALL_ATOM_UTF8_EXT
atom_ext(Name) -> <<119, (byte_size(Name)), Name/binary>>.

%%% Files

clean(Dir) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    [ok = file:delete(F) || F <- filelib:wildcard(filename:join(Dir, "*"))],
    ok.

%% As clean/1, but the files named Keep* stay (inputs a fuzzing run found)
clean(Dir, Keep) ->
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    [ok = file:delete(F) || F <- filelib:wildcard(filename:join(Dir, "*")),
                            not lists:prefix(Keep, filename:basename(F))],
    ok.

write(Dir, Name, Bin) ->
    ok = file:write_file(filename:join(Dir, Name), Bin).
