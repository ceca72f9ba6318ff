#!/usr/bin/env escript
%%! -pa ebin
%%
%% A live capture on the loopback interface through the embedded ewpcapd:
%% prints every packet seen on lo for a few seconds, and sends itself a few
%% UDP datagrams so there is something to see. Run from the top of the
%% source tree as root (or after `make setcap`):
%%
%%     escript examples/capture_lo.escript [Count]
-include_lib("kernel/include/inet.hrl").

main(Args) ->
    Count = case Args of [N] -> list_to_integer(N); _ -> 10 end,
    {ok, S} = ewpcap:open(<<"lo">>, [{filter, "udp or icmp or tcp"}]),
    io:format("capturing on lo through ~s (~b packets, 10 s at most)~n",
              [ewpcap:node(), Count]),
    {ok, U} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}]),
    Sender = spawn_link(fun() -> send(U, 5) end),
    print(S, Count, erlang:monotonic_time(millisecond) + 10000),
    unlink(Sender),
    exit(Sender, kill),
    {ok, Stat} = ewpcap:stats(S),
    ok = ewpcap:close(S),
    io:format("stats: ~p~n", [Stat]).

send(_, 0) ->
    ok;
send(U, N) ->
    ok = gen_udp:send(U, {127, 0, 0, 1}, 5555, <<"hello from ewpcap ", (integer_to_binary(N))/binary>>),
    timer:sleep(300),
    send(U, N - 1).

print(_, 0, _) ->
    ok;
print(S, N, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {ewpcap, _Ref, Dlt, Time, Len, Packet} ->
            io:format("~s dlt ~b len ~b ~s~n", [time(Time), Dlt, Len, summary(Dlt, Packet)]),
            print(S, N - 1, Deadline)
    after Left ->
        ok
    end.

time({M, S, U}) ->
    {_, {H, Mi, Se}} = calendar:now_to_local_time({M, S, U}),
    io_lib:format("~2..0b:~2..0b:~2..0b.~6..0b", [H, Mi, Se, U]).

%% Ethernet (DLT 1, as Linux reports lo) carrying IPv4
summary(1, <<_:12/binary, 16#0800:16, IP/binary>>) -> ipv4(IP);
summary(_, Packet) -> io_lib:format("~b bytes", [byte_size(Packet)]).

ipv4(<<4:4, IHL:4, _:8, _:16, _:32, _:8, Proto:8, _:16, Src:4/binary, Dst:4/binary, Rest/binary>>) ->
    L4 = binary:part(Rest, IHL * 4 - 20, byte_size(Rest) - (IHL * 4 - 20)),
    io_lib:format("IP ~s > ~s ~s", [addr(Src), addr(Dst), l4(Proto, L4)]);
ipv4(_) ->
    "IP (truncated)".

l4(17, <<SP:16, DP:16, Len:16, _:16, Payload/binary>>) ->
    io_lib:format("UDP ~b > ~b len ~b ~p", [SP, DP, Len - 8, Payload]);
l4(6, <<SP:16, DP:16, _/binary>>) -> io_lib:format("TCP ~b > ~b", [SP, DP]);
l4(1, <<Type, Code, _/binary>>) -> io_lib:format("ICMP type ~b code ~b", [Type, Code]);
l4(P, _) -> io_lib:format("proto ~b", [P]).

addr(<<A, B, C, D>>) -> inet:ntoa({A, B, C, D}).
