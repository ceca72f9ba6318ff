%%% @doc What the ewpcap_dump suites share (not a suite): running
%%% ewpcap_dump and other commands as OS processes (their output, exit
%%% status, a pseudo-terminal), waiting for a capture to listen, traffic
%%% on lo, the two network namespaces with a second ewpcapd, and the tiny
%%% pcap writer of test/data/'s fixtures. The processes a case starts are
%%% kept in its process dictionary (get_procs/0): end_per_testcase stops
%%% them with stop_proc/1.
%%% @end
-module(ewpcap_dump_helpers).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([
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

-define(RUN_TIMEOUT, 60).     % seconds any one ewpcap_dump run may take
-define(READY_MS, 20000).     % until "listening on ..." appears
-define(NS_PREFIX, (ewpcap_netns:prefix() ++ "dump")).   % ewp_ct_dump, or $EWP_NS_PREFIX ++ "dump"
-define(T0, 1700000000).      % fixture time: 2023-11-14 22:13:20 UTC

%%% ===================================================================
%%% Savefile fixtures: a tiny pcap writer
%%% ===================================================================

%% Writes the fixtures to Dir; returns their names. Regenerate the
%% checked-in ones with
%%   erl -pa ebin -pa test -noshell -eval 'ewpcap_dump_SUITE:fixtures("test/data"), halt().'
%% (after `erlc -o test test/ewpcap_dump_SUITE.erl'), then
%%   TZ=UTC bin/ewpcap_dump -n -r test/data/known.pcap > test/data/known.txt
%% and check known.txt against tcpdump -n -r (known_text_is_tcpdumps).
fixtures(Dir) ->
    Known = known_packets(),
    ok = write_pcap(filename:join(Dir, "known.pcap"), 1, Known),
    ok = write_pcap(filename:join(Dir, "known-be-ns.pcap"), 1,
                    [{T, L, P} || {T, P} <- Known, L <- [byte_size(P)]], big, nano),
    ok = write_pcap(filename:join(Dir, "cooked.pcap"), 113, cooked_packets()),
    ok = write_pcap(filename:join(Dir, "raw.pcap"), 101, raw_packets()),
    ["known.pcap", "known-be-ns.pcap", "cooked.pcap", "raw.pcap"].

-define(MAC_A, <<2, 0, 0, 0, 0, 1>>).
-define(MAC_B, <<2, 0, 0, 0, 0, 2>>).
-define(IP_A, {10, 0, 0, 1}).
-define(IP_B, {10, 0, 0, 2}).
-define(IP6_A, {16#fd00, 0, 0, 0, 0, 0, 0, 1}).
-define(IP6_B, {16#fd00, 0, 0, 0, 0, 0, 0, 2}).

known_packets() ->
    TcpOpts = <<2, 4, 16#FF, 16#D7, 4, 2, 8, 10, 0, 0, 0, 100, 0, 0, 0, 0, 1, 3, 3, 7>>,
    TsOpts = fun(V, E) -> <<1, 1, 8, 10, V:32, E:32>> end,
    Seq = 1000000,
    Ack = 2000000,
    Pkts = [
        % 1, 2: ARP who-has and is-at, padded to 60 bytes as on a wire
        eth(?MAC_A, <<255, 255, 255, 255, 255, 255>>, 16#0806,
            pad(arp(1, ?MAC_A, ?IP_A, <<0:48>>, ?IP_B), 46)),
        eth(?MAC_B, ?MAC_A, 16#0806, pad(arp(2, ?MAC_B, ?IP_B, ?MAC_A, ?IP_A), 46)),
        % 3: UDP
        eth(ipv4(17, ?IP_A, ?IP_B, udp(40000, 5555, <<"hello">>))),
        % 4-9: a TCP connection: SYN, SYN-ACK, ACK, data both ways, FIN
        eth(ipv4(6, ?IP_A, ?IP_B, tcp(40001, 5556, Seq, 0, 16#02, 64240, TcpOpts, <<>>))),
        eth(ipv4(6, ?IP_B, ?IP_A, tcp(5556, 40001, Ack, Seq + 1, 16#12, 65160, TcpOpts, <<>>))),
        eth(ipv4(6, ?IP_A, ?IP_B, tcp(40001, 5556, Seq + 1, Ack + 1, 16#10, 502, TsOpts(101, 100), <<>>))),
        eth(ipv4(6, ?IP_A, ?IP_B, tcp(40001, 5556, Seq + 1, Ack + 1, 16#18, 502, TsOpts(102, 100), <<"GET\r\n">>))),
        eth(ipv4(6, ?IP_B, ?IP_A, tcp(5556, 40001, Ack + 1, Seq + 6, 16#18, 509, TsOpts(200, 102), <<"OK!">>))),
        eth(ipv4(6, ?IP_A, ?IP_B, tcp(40001, 5556, Seq + 6, Ack + 4, 16#11, 502, <<>>, <<>>))),
        % 10: TCP with a SACK option and urgent pointer, no connection base
        eth(ipv4(6, ?IP_B, ?IP_A, tcp(5557, 40002, 77, 88, 16#30, 100,
                                      <<1, 1, 5, 10, 0, 0, 0, 10, 0, 0, 0, 20>>, <<>>, 5))),
        % 11, 12: ICMP echo
        eth(ipv4(1, ?IP_A, ?IP_B, icmp(8, 0, <<7:16, 1:16, "pingpong">>))),
        eth(ipv4(1, ?IP_B, ?IP_A, icmp(0, 0, <<7:16, 1:16, "pingpong">>))),
        % 13: ICMP port unreachable quoting a UDP datagram
        eth(ipv4(1, ?IP_B, ?IP_A,
                 icmp(3, 3, <<0:32, (ipv4(17, ?IP_A, ?IP_B, udp(40003, 9999, <<"x">>)))/binary>>))),
        % 14: ICMP time exceeded
        eth(ipv4(1, ?IP_B, ?IP_A, icmp(11, 0, <<0:32, (ipv4(17, ?IP_A, ?IP_B, udp(1, 2, <<>>)))/binary>>))),
        % 15: IPv6 UDP
        eth(?MAC_B, ?MAC_A, 16#86DD, ipv6(17, 64, ?IP6_A, ?IP6_B, udp(40000, 5555, <<"hello">>), 16#12345)),
        % 16, 17: ICMPv6 echo
        eth(?MAC_B, ?MAC_A, 16#86DD, ipv6(58, 64, ?IP6_A, ?IP6_B, icmp(128, 0, <<9:16, 2:16, "ping6">>))),
        eth(?MAC_A, ?MAC_B, 16#86DD, ipv6(58, 64, ?IP6_B, ?IP6_A, icmp(129, 0, <<9:16, 2:16, "ping6">>))),
        % 18: ICMPv6 neighbor solicitation
        eth(<<16#33, 16#33, 16#ff, 0, 0, 2>>, ?MAC_A, 16#86DD,
            ipv6(58, 255, ?IP6_A, {16#ff02, 0, 0, 0, 0, 1, 16#ff00, 2},
                 icmp(135, 0, <<0:32, (addr(?IP6_B))/binary, 1, 1, (?MAC_A)/binary>>))),
        % 19: IPv6 TCP SYN
        eth(?MAC_B, ?MAC_A, 16#86DD, ipv6(6, 64, ?IP6_A, ?IP6_B, tcp(40004, 22, 5, 0, 16#02, 1000, <<>>, <<>>))),
        % 20: 802.1Q-tagged UDP
        eth(?MAC_B, ?MAC_A, 16#8100, <<0:3, 0:1, 100:12, 16#0800:16,
                                       (ipv4(17, ?IP_A, ?IP_B, udp(40005, 5555, <<"vlan">>)))/binary>>),
        % 21: ICMPv6 destination unreachable (port) quoting a UDP datagram
        eth(?MAC_A, ?MAC_B, 16#86DD,
            ipv6(58, 64, ?IP6_B, ?IP6_A,
                 icmp(1, 4, <<0:32, (ipv6(17, 64, ?IP6_A, ?IP6_B, udp(40006, 9999, <<"q">>)))/binary>>)))
    ],
    [{(?T0 * 1000000) + N * 1000, P} || {N, P} <- lists:zip(lists:seq(1, length(Pkts)), Pkts)].

%% Linux cooked v1 (DLT 113): the pseudo header, then IP.
cooked_packets() ->
    Sll = fun(Type, Proto) -> <<Type:16, 1:16, 6:16, (?MAC_A)/binary, 0:16, Proto:16>> end,
    [{?T0 * 1000000 + 1, <<(Sll(0, 16#0800))/binary, (ipv4(17, ?IP_A, ?IP_B, udp(1234, 5555, <<"any">>)))/binary>>},
     {?T0 * 1000000 + 2, <<(Sll(4, 16#86DD))/binary,
                          (ipv6(58, 64, ?IP6_A, ?IP6_B, icmp(128, 0, <<1:16, 1:16>>)))/binary>>}].

raw_packets() ->
    [{?T0 * 1000000 + 5, ipv4(17, ?IP_A, ?IP_B, udp(1, 2, <<"raw">>))},
     {?T0 * 1000000 + 6, ipv6(17, 64, ?IP6_A, ?IP6_B, udp(3, 4, <<"raw6">>))}].

eth(Payload) -> eth(?MAC_B, ?MAC_A, 16#0800, Payload).

eth(Dst, Src, Type, Payload) -> <<Dst/binary, Src/binary, Type:16, Payload/binary>>.

pad(Bin, N) when byte_size(Bin) >= N -> Bin;
pad(Bin, N) -> <<Bin/binary, 0:((N - byte_size(Bin)) * 8)>>.

arp(Op, Sha, Spa, Tha, Tpa) ->
    <<1:16, 16#0800:16, 6, 4, Op:16, Sha/binary, (addr(Spa))/binary, Tha/binary, (addr(Tpa))/binary>>.

ipv4(Proto, Src, Dst, Payload) ->
    Len = 20 + byte_size(Payload),
    H0 = <<4:4, 5:4, 0, Len:16, 1:16, 0:1, 1:1, 0:1, 0:13, 64, Proto, 0:16,
           (addr(Src))/binary, (addr(Dst))/binary>>,
    <<Pre:10/binary, _:16, Post/binary>> = H0,
    <<Pre/binary, (checksum(H0)):16, Post/binary, Payload/binary>>.

ipv6(Next, HLim, Src, Dst, Payload) ->
    ipv6(Next, HLim, Src, Dst, Payload, 0).

ipv6(Next, HLim, Src, Dst, Payload, Flow) ->
    <<6:4, 0:8, Flow:20, (byte_size(Payload)):16, Next, HLim, (addr(Src))/binary, (addr(Dst))/binary,
      Payload/binary>>.

udp(SP, DP, Data) -> <<SP:16, DP:16, (8 + byte_size(Data)):16, 0:16, Data/binary>>.

tcp(SP, DP, Seq, Ack, Flags, Win, Opts, Data) ->
    tcp(SP, DP, Seq, Ack, Flags, Win, Opts, Data, 0).

tcp(SP, DP, Seq, Ack, Flags, Win, Opts, Data, Urp) ->
    Off = 5 + byte_size(Opts) div 4,
    <<SP:16, DP:16, Seq:32, Ack:32, Off:4, 0:4, Flags, Win:16, 0:16, Urp:16, Opts/binary, Data/binary>>.

icmp(Type, Code, Rest) ->
    <<Type, Code, (checksum(<<Type, Code, 0:16, Rest/binary>>)):16, Rest/binary>>.

addr({A, B, C, D}) -> <<A, B, C, D>>;
addr(T) -> << <<X:16>> || X <- tuple_to_list(T) >>.

checksum(Bin) ->
    Padded = case byte_size(Bin) rem 2 of
                 0 -> Bin;
                 1 -> <<Bin/binary, 0>>
             end,
    Sum = lists:sum([W || <<W:16>> <= Padded]),
    Folded = fold(Sum),
    (bnot Folded) band 16#FFFF.

fold(S) when S > 16#FFFF -> fold((S band 16#FFFF) + (S bsr 16));
fold(S) -> S.

%% Records {TimeMicro, Packet} (wire length = captured) or
%% {TimeMicro, Len, Packet}.
write_pcap(File, LinkType, Recs) ->
    write_pcap(File, LinkType, [norm_rec(R) || R <- Recs], little, micro).

write_pcap(File, LinkType, Recs, Endian, Unit) ->
    {Magic, Scale} = case Unit of
                         micro -> {16#a1b2c3d4, 1};
                         nano -> {16#a1b23c4d, 1000}
                     end,
    U32 = fun(V) -> case Endian of big -> <<V:32/big>>; little -> <<V:32/little>> end end,
    U16 = fun(V) -> case Endian of big -> <<V:16/big>>; little -> <<V:16/little>> end end,
    Header = [U32(Magic), U16(2), U16(4), U32(0), U32(0), U32(262144), U32(LinkType)],
    Body = [[U32(T div 1000000), U32((T rem 1000000) * Scale + extra_ns(Unit)),
             U32(byte_size(P)), U32(L), P] || {T, L, P} <- [norm_rec(R) || R <- Recs]],
    file:write_file(File, [Header, Body]).

%% sub-microsecond digits in the nanosecond file, that printing drops
extra_ns(nano) -> 999;
extra_ns(micro) -> 0.

norm_rec({T, P}) -> {T, byte_size(P), P};
norm_rec({_, _, _} = R) -> R.

%%% ===================================================================
%%% Running ewpcap_dump and other commands
%%% ===================================================================

root() ->
    string:trim(os:cmd("id -u")) =:= "0".

dump_path() ->
    Ebin = filename:dirname(code:which(ewpcap)),
    filename:join([filename:dirname(Ebin), "bin", "ewpcap_dump"]).

data_dir() ->
    Ebin = filename:dirname(code:which(ewpcap)),
    filename:join([filename:dirname(Ebin), "test", "data"]).

data(Config, Name) ->
    filename:join(?config(data, Config), Name).

need(Exe) ->
    case os:find_executable(Exe) of
        false -> throw({skip, Exe ++ " not installed"});
        _ -> ok
    end.

%% The expected text of known.pcap: tcpdump's, made now (TZ=UTC), or
%% where tcpdump is missing the checked-in copy test/data/known.txt
%% (known_text_is_tcpdumps checks that copy against tcpdump).
known(Config) ->
    case os:find_executable("tcpdump") of
        false ->
            lines(read(data(Config, "known.txt")));
        _ ->
            {0, Out, _} = cmd(["tcpdump", "-n", "-r", data(Config, "known.pcap")]),
            lines(Out)
    end.

read(File) ->
    {ok, B} = file:read_file(File),
    B.

lines(Bin) ->
    binary:split(Bin, <<"\n">>, [global, trim_all]).

re_quote(Bin) ->
    re:replace(Bin, <<"[.^$*+?()\\[\\]{}|\\\\]">>, <<"\\\\&">>, [global, {return, binary}]).

%% ewpcap_dump run to its end: {Status, Stdout, Stderr}, TZ=UTC.
dump(Config, Args) ->
    dump(Config, Args, []).

dump(Config, Args, Opts) ->
    P = start(Config, Args, Opts),
    case proplists:get_value(after_start, Opts) of
        undefined ->
            ok;
        Fun ->
            ok = wait_listening(P),
            _ = Fun()
    end,
    wait_exit(P, ?RUN_TIMEOUT * 1000).

cmd(Argv) ->
    wait_exit(start_cmd(Argv), ?RUN_TIMEOUT * 1000).

start(Config, Args) ->
    start(Config, Args, []).

start(Config, Args, Opts) ->
    start_cmd([?config(dump, Config) | Args], Opts).

start_cmd(Argv) ->
    start_cmd(Argv, []).

start_cmd(Argv, Opts) ->
    Stdin = case proplists:get_value(stdin, Opts) of
                undefined -> "/dev/null";
                F -> F
            end,
    start_sh(["exec ", lists:join(" ", [quote(A) || A <- Argv]), " <", quote(Stdin)], undefined).

%% sh -c Cmd with stdout and stderr to files; Dir for temporary files.
start_sh(Cmd, Dir0) ->
    Dir = case Dir0 of
              undefined -> tmp_dir();
              _ -> Dir0
          end,
    % names unique across runs, and no file left from an earlier one
    % (wait_listening must not find an old "listening on")
    N = os:getpid() ++ "-" ++ integer_to_list(erlang:unique_integer([positive])),
    Out = filename:join(Dir, "proc-" ++ N ++ ".out"),
    Err = filename:join(Dir, "proc-" ++ N ++ ".err"),
    _ = file:delete(Out),
    _ = file:delete(Err),
    Full = lists:flatten(["TZ=UTC; export TZ; { ", Cmd, "; } >", quote(Out), " 2>", quote(Err)]),
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{args, ["-c", Full]}, exit_status, binary, stderr_to_stdout]),
    {os_pid, Pid} = erlang:port_info(Port, os_pid),
    P = #{port => Port, pid => Pid, out => Out, err => Err},
    put(procs, [P | get_procs()]),
    P.

get_procs() ->
    case get(procs) of
        undefined -> [];
        L -> L
    end.

tmp_dir() ->
    Dir = filename:join(["/tmp", "ewpcap_dump_ct"]),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Dir.

out_file(#{out := Out}) -> Out.

quote(S) ->
    "'" ++ lists:flatmap(fun($') -> "'\\''"; (C) -> [C] end, lists:flatten(S)) ++ "'".

wait_listening(#{err := Err} = P) ->
    wait_until(fun() ->
                       case file:read_file(Err) of
                           {ok, B} ->
                               binary:match(B, [<<"listening on">>, <<"reading from">>]) =/= nomatch
                                   orelse exited(P);
                           _ ->
                               false
                       end
               end, ?READY_MS).

exited(#{port := Port}) ->
    erlang:port_info(Port) =:= undefined.

wait_until(Fun, Ms) when Ms =< 0 ->
    case Fun() of
        true -> ok;
        false -> {error, timeout}
    end;
wait_until(Fun, Ms) ->
    case Fun() of
        true -> ok;
        false -> timer:sleep(50), wait_until(Fun, Ms - 50)
    end.

wait_exit(#{port := Port, out := Out, err := Err} = P, Ms) ->
    receive
        {Port, {exit_status, Status}} ->
            put(procs, [Q || Q <- get_procs(), Q =/= P]),
            {Status, read(Out), read(Err)}
    after Ms ->
        stop_proc(P),
        ct:fail({timeout, read(Out), read(Err)})
    end.

%% Signal the process (and, for the escript's wrapper, its children).
stop(#{pid := Pid} = P, Sig) ->
    _ = os:cmd("kill -" ++ Sig ++ " " ++ integer_to_list(Pid)),
    wait_exit(P, 20000).

stop_proc(#{pid := Pid, port := Port}) ->
    Tree = [integer_to_list(P) || P <- [Pid | descendants(Pid)]],
    _ = os:cmd("kill -KILL " ++ lists:join(" ", Tree)),
    catch port_close(Port),
    ok.

%% The processes below Pid (the wrapper's emulator, a pipeline's members).
descendants(Pid) ->
    Pairs = [{list_to_integer(C), list_to_integer(P)}
             || L <- string:split(os:cmd("ps -eo pid=,ppid="), "\n", all),
                [C, P] <- [string:lexemes(L, " ")]],
    descendants([Pid], Pairs, []).

descendants([], _Pairs, Acc) ->
    Acc;
descendants([P | Rest], Pairs, Acc) ->
    Kids = [C || {C, PP} <- Pairs, PP =:= P],
    descendants(Kids ++ Rest, Pairs, Kids ++ Acc).

%% A command in a pseudo terminal: script(1), its input from our port.
%% script runs the command with $SHELL -c (/bin/sh when SHELL is unset, as
%% under CI); "exec" makes every shell replace itself with the command, so
%% Ctrl-C reaches only the command, as from an interactive shell (dash
%% would otherwise wait for it and die of the SIGINT itself, status 130).
start_pty(Cmd) ->
    Full = "TZ=UTC; export TZ; exec script -qfec " ++ quote("exec " ++ Cmd) ++ " /dev/null",
    Port = open_port({spawn_executable, "/bin/sh"}, [{args, ["-c", Full]}, exit_status, binary,
                                                     stderr_to_stdout]),
    {Port, <<>>}.

pty_wait(Port, Acc, Pattern, Ms) ->
    pty_wait(Port, Acc, Pattern, Ms, 1).

pty_wait(Port, Acc, Pattern, Ms, N) ->
    Deadline = erlang:monotonic_time(millisecond) + Ms,
    pty_wait_until(Port, Acc, Pattern, Deadline, N).

pty_wait_until(Port, Acc, Pattern, Deadline, N) ->
    case length(binary:matches(Acc, pattern_prefix(Pattern))) >= N of
        true ->
            {ok, Acc};
        false ->
            Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
            receive
                {Port, {data, D}} -> pty_wait_until(Port, <<Acc/binary, D/binary>>, Pattern, Deadline, N)
            after Left ->
                catch port_close(Port),
                ct:fail({pty_timeout, Pattern, Acc})
            end
    end.

pattern_prefix(P) when is_binary(P) -> P.

pty_exit(Port, Acc, Ms) ->
    receive
        {Port, {data, D}} -> pty_exit(Port, <<Acc/binary, D/binary>>, Ms);
        {Port, {exit_status, S}} -> {S, Acc}
    after Ms ->
        catch port_close(Port),
        ct:fail({pty_exit_timeout, Acc})
    end.

%%% ===================================================================
%%% Traffic on lo
%%% ===================================================================

udp_receiver() ->
    {ok, S} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}, binary, {active, false}]),
    {ok, Port} = inet:port(S),
    {S, Port}.

send_udp(Port, N, Payload) ->
    {ok, S} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}, binary]),
    [begin ok = gen_udp:send(S, {127, 0, 0, 1}, Port, Payload), timer:sleep(20) end
     || _ <- lists:seq(1, N)],
    gen_udp:close(S).

send_udp6(Port, N, Payload) ->
    {ok, R} = gen_udp:open(Port, [inet6, {ip, {0, 0, 0, 0, 0, 0, 0, 1}}, binary, {active, false}]),
    {ok, S} = gen_udp:open(0, [inet6, {ip, {0, 0, 0, 0, 0, 0, 0, 1}}, binary]),
    [begin ok = gen_udp:send(S, {0, 0, 0, 0, 0, 0, 0, 1}, Port, Payload), timer:sleep(20) end
     || _ <- lists:seq(1, N)],
    gen_udp:close(S),
    gen_udp:close(R).

tcp_exchange(L, Port) ->
    {ok, C} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}]),
    {ok, A} = gen_tcp:accept(L, 5000),
    ok = gen_tcp:send(C, <<"hello">>),
    {ok, <<"hello">>} = gen_tcp:recv(A, 5, 5000),
    ok = gen_tcp:send(A, <<"world!">>),
    {ok, <<"world!">>} = gen_tcp:recv(C, 6, 5000),
    ok = gen_tcp:close(C),
    {error, closed} = gen_tcp:recv(A, 0, 5000),
    ok = gen_tcp:close(A),
    timer:sleep(100).

%% Echo requests to 127.0.0.1 from a raw socket (the kernel answers).
icmp_echo(Id, N) ->
    {ok, S} = socket:open(inet, raw, icmp),
    [begin
         Req = icmp(8, 0, <<Id:16, Seq:16, "ewpcap_dump">>),
         ok = socket:sendto(S, Req, #{family => inet, addr => {127, 0, 0, 1}, port => 0}),
         timer:sleep(20)
     end || Seq <- lists:seq(1, N)],
    socket:close(S).

%% Echo requests to ::1 (the kernel computes ICMPv6 checksums of raw sockets).
icmp6_echo(Id, N) ->
    {ok, S} = socket:open(inet6, raw, 58),
    [begin
         Req = <<128, 0, 0:16, Id:16, Seq:16, "ewpcap_dump">>,
         ok = socket:sendto(S, Req, #{family => inet6, addr => {0, 0, 0, 0, 0, 0, 0, 1}, port => 0}),
         timer:sleep(20)
     end || Seq <- lists:seq(1, N)],
    socket:close(S).

%%% ===================================================================
%%% Namespaces and the second daemon
%%% ===================================================================

%% Namespaces A and B joined by a veth pair: ewpd0 10.199.0.1/24 in A,
%% ewpd1 10.199.0.2/24 in B.
make_namespaces() ->
    Tag = integer_to_list(rand:uniform(16#FFFFF), 36),
    A = ?NS_PREFIX ++ "_a" ++ Tag,
    B = ?NS_PREFIX ++ "_b" ++ Tag,
    Steps = [
        ["netns", "add", A],
        ["netns", "add", B],
        ["-n", A, "link", "add", "ewpd0", "type", "veth", "peer", "name", "ewpd1", "netns", B],
        ["-n", A, "addr", "add", "10.199.0.1/24", "dev", "ewpd0"],
        ["-n", B, "addr", "add", "10.199.0.2/24", "dev", "ewpd1"],
        ["-n", A, "link", "set", "ewpd0", "up"],
        ["-n", B, "link", "set", "ewpd1", "up"],
        ["-n", A, "link", "set", "lo", "up"],
        ["-n", B, "link", "set", "lo", "up"]
    ],
    case run_ip(Steps) of
        ok -> {ok, A, B};
        {error, _} = E -> E
    end.

run_ip([]) ->
    ok;
run_ip([Args | Rest]) ->
    case cmd(["ip" | Args]) of
        {0, _, _} -> run_ip(Rest);
        {S, O, E} -> {error, {ip, Args, S, O, E}}
    end.

cleanup_namespaces() ->
    {_, Out, _} = cmd(["ip", "netns", "list"]),
    [cmd(["ip", "netns", "delete", binary_to_list(NS)])
     || L <- lines(Out), [NS | _] <- [binary:split(L, <<" ">>)],
        binary:match(NS, list_to_binary(?NS_PREFIX)) =:= {0, length(?NS_PREFIX)}].

%% ewpcapd -sname ewp_dump_ct_<n> --netns A, its cookie in the
%% environment, as a port (--stdin: it exits with the port) held by a
%% process of its own: init_per_group's process ends after the init.
start_ns_daemon(NS) ->
    Exe = ewpcap_daemon:executable(),   % priv/ewpcapd, or $EWPCAPD (make ct-asan)
    Name = "ewp_dump_ct_" ++ integer_to_list(erlang:unique_integer([positive])),
    Cookie = "ewp_dump_cookie_" ++ integer_to_list(rand:uniform(1 bsl 40)),
    Parent = self(),
    Holder = spawn(fun() ->
                           Port = open_port({spawn_executable, Exe},
                                            [{args, ["-sname", Name, "--netns", NS, "--stdin"]},
                                             {env, [{"EWPCAPD_COOKIE", Cookie}]},
                                             {line, 1024}, binary, exit_status, use_stdio,
                                             stderr_to_stdout]),
                           Parent ! {self(), ns_ready(Port, erlang:monotonic_time(millisecond) + ?READY_MS)},
                           ns_hold(Port)
                   end),
    receive
        {Holder, {ok, Node}} -> {ok, Holder, Node, Cookie};
        {Holder, {error, _} = Error} -> Error
    end.

ns_ready(Port, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, {eol, <<"ready ", Node/binary>>}}} ->
            {ok, binary_to_atom(Node)};
        {Port, {data, Line}} ->
            ct:pal("ns ewpcapd: ~p", [Line]),
            ns_ready(Port, Deadline);
        {Port, {exit_status, S}} ->
            {error, {exit, S}}
    after Left ->
        catch port_close(Port),
        {error, timeout}
    end.

ns_hold(Port) ->
    receive
        {stop, From} ->
            catch port_close(Port),
            From ! {self(), stopped};
        {Port, {exit_status, S}} ->
            ct:pal("ns ewpcapd exited: ~p", [S]);
        {Port, {data, Line}} ->
            ct:pal("ns ewpcapd: ~p", [Line]),
            ns_hold(Port)
    end.

stop_ns_daemon(Holder) ->
    Holder ! {stop, self()},
    receive
        {Holder, stopped} -> ok
    after 5000 -> ok
    end.
