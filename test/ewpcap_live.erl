%%% @doc Test helper of the live suites ewpcap_SUITE (lo) and
%%% ewpcap_netns_SUITE (a veth pair in a namespace): UDP traffic on lo and
%%% its packets, replies checked, the embedded daemon's handles, bounded
%%% waits and the mailbox.
%%% @end
-module(ewpcap_live).

-export([
    %% the host and the UDP traffic on lo
    root/0, if_lo_captures/1, udp_receiver/0, udp_sender/0, udp_filter/1, marker/1, ethernet_frame/1,
    %% packets
    expect_payload/3, unexpected/3, is_udp_to/2, decode_udp/1, assert_near_now/1,
    %% replies
    is_string/1, valid_ifattr/1, addr_masks/1,
    %% the daemon's handles
    find_handle/2, has_handle/1, handle_device/1, assert_no_handles/0,
    %% waits and the mailbox
    poll/2, flush/0, flush_list/0
]).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-define(WAIT, 5000).       % ms to wait for a packet that must come
-define(ETHERTYPE, 16#88B5). % IEEE 802 local experimental ethertype 1

root() ->
    os:cmd("id -u") =:= "0\n".

%% Config when this node can capture on lo, else a skip that says why
%% (an init_per_suite or init_per_group: rather than every case failing).
if_lo_captures(Config) ->
    case ewpcap:open(<<"lo">>, [{filter, "udp port 9 and udp port 10"}]) of
        {ok, S} ->
            ok = ewpcap:close(S),
            Config;
        {error, Reason} ->
            {skip, lists:flatten(io_lib:format("cannot capture on lo: ~tp", [Reason]))}
    end.

%% A UDP socket bound to 127.0.0.1 on a free port, receiving what we send
%% (so no ICMP port unreachable is generated).
udp_receiver() ->
    {ok, Rx} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false},
                                {recbuf, 1024 * 1024}]),
    {ok, Port} = inet:port(Rx),
    {Rx, Port}.

udp_sender() ->
    {ok, Tx} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}, {active, false}]),
    Tx.

udp_filter(Port) ->
    "udp port " ++ integer_to_list(Port).

%% A unique payload of Size bytes (at least 0): a counter then random bytes.
marker(0) ->
    <<>>;
marker(Size) ->
    Id = integer_to_binary(erlang:unique_integer([positive])),
    Seed = <<"ewp", Id/binary, ":", (rand:bytes(Size))/binary>>,
    binary:part(Seed, 0, min(Size, byte_size(Seed))).

%% Waits for the packet of handle S that carries Payload to Port (a UDP
%% datagram on an Ethernet-framed lo). Other packets of S are skipped.
expect_payload(#ewpcap_resource{ref = Ref}, Port, Payload) ->
    Deadline = erlang:monotonic_time(millisecond) + ?WAIT,
    expect_payload(Ref, Port, Payload, Deadline, []).

expect_payload(Ref, Port, Payload, Deadline, Skipped) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {ewpcap, Ref, DLT, Time, Length, Packet} ->
            case catch decode_udp(Packet) of
                {_, _, _, Port, Payload} ->
                    {DLT, Time, Length, Packet};
                _ ->
                    expect_payload(Ref, Port, Payload, Deadline, [Packet | Skipped])
            end;
        {ewpcap_error, Ref, Reason} ->
            ct:fail({ewpcap_error, Reason})
    after Left ->
        ct:fail({payload_not_captured, Port, byte_size(Payload),
                 {skipped, length(Skipped)}, {other_messages, flush_list()}})
    end.

%% Packets of handle S that arrive within Wait ms (and those already in the
%% mailbox) for which Bad(Packet) is true.
unexpected(#ewpcap_resource{ref = Ref}, Bad, Wait) ->
    Deadline = erlang:monotonic_time(millisecond) + Wait,
    unexpected(Ref, Bad, Deadline, []).

unexpected(Ref, Bad, Deadline, Acc) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {ewpcap, Ref, _, _, _, Packet} ->
            case Bad(Packet) of
                true -> unexpected(Ref, Bad, Deadline, [Packet | Acc]);
                false -> unexpected(Ref, Bad, Deadline, Acc)
            end
    after Left ->
        lists:reverse(Acc)
    end.

is_udp_to(Packet, Port) ->
    case catch decode_udp(Packet) of
        {_, _, _, Port, _} -> true;
        {_, _, Port, _, _} -> true;
        _ -> false
    end.

%% Ethernet II / IPv4 / UDP -> {Src, Dst, SrcPort, DstPort, Payload}.
decode_udp(<<_Dst:6/binary, _Src:6/binary, 16#0800:16, 4:4, IHL:4, _Tos:8,
             TotLen:16, _Id:16, _Frag:16, _Ttl:8, 17:8, _Sum:16,
             S1, S2, S3, S4, D1, D2, D3, D4, Rest0/binary>>) ->
    OptLen = (IHL - 5) * 4,
    <<_Opts:OptLen/binary, SPort:16, DPort:16, ULen:16, _USum:16, Rest/binary>> = Rest0,
    PayLen = ULen - 8,
    TotLen = 20 + OptLen + ULen,
    <<Payload:PayLen/binary>> = Rest,
    {{S1, S2, S3, S4}, {D1, D2, D3, D4}, SPort, DPort, Payload}.

%% A 60-byte broadcast Ethernet frame with ethertype 0x88B5 carrying Data.
ethernet_frame(Data) when byte_size(Data) =< 46 ->
    Pad = binary:copy(<<0>>, 46 - byte_size(Data)),
    <<16#FF, 16#FF, 16#FF, 16#FF, 16#FF, 16#FF,
      16#02, 16#00, 16#5E, 16#00, 16#53, 16#01,
      ?ETHERTYPE:16, Data/binary, Pad/binary>>.

assert_near_now(Microseconds) ->
    Now = os:system_time(microsecond),
    Diff = abs(Now - Microseconds),
    Diff =< 10000000 orelse ct:fail({time_off_by_us, Diff, Microseconds, Now}),
    ok.

is_string(S) ->
    is_list(S) andalso S =/= [] andalso io_lib:printable_unicode_list(S).

valid_ifattr({description, S}) -> is_list(S);
valid_ifattr({flag, L}) -> is_list(L);
valid_ifattr({K, A}) when K =:= addr; K =:= netmask; K =:= broadaddr; K =:= dstaddr ->
    (is_tuple(A) andalso (tuple_size(A) =:= 4 orelse tuple_size(A) =:= 8));
valid_ifattr(_) -> false.

%% The {Addr, Netmask} pairs of an interface, sorted (an address without a
%% netmask pairs with undefined).
addr_masks(Attrs) ->
    lists:sort(addr_masks(Attrs, [])).

addr_masks([], Acc) ->
    Acc;
addr_masks([{addr, A} | Rest], Acc) ->
    case Rest of
        [{netmask, M} | Rest1] -> addr_masks(Rest1, [{A, M} | Acc]);
        _ -> addr_masks(Rest, [{A, undefined} | Acc])
    end;
addr_masks([_ | Rest], Acc) ->
    addr_masks(Rest, Acc).

handles() ->
    {ok, Info} = ewpcap:info(),
    proplists:get_value(handles, Info).

find_handle(Ref, Handles) ->
    case [H || H <- Handles, proplists:get_value(ref, H) =:= Ref] of
        [H] -> H;
        [] -> false
    end.

has_handle(Ref) ->
    find_handle(Ref, handles()) =/= false.

handle_device(Ref) ->
    case find_handle(Ref, handles()) of
        false -> ct:fail({no_handle, Ref});
        H -> proplists:get_value(device, H)
    end.

%% No handle of this process is left open on the embedded daemon.
assert_no_handles() ->
    Self = self(),
    ?assertEqual([], [H || H <- handles(), proplists:get_value(owner, H) =:= Self]).

%% Calls F every 100 ms until it returns true or Timeout ms have passed.
poll(F, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    poll_until(F, Deadline).

poll_until(F, Deadline) ->
    case F() of
        true ->
            true;
        false ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true ->
                    false;
                false ->
                    timer:sleep(100),
                    poll_until(F, Deadline)
            end
    end.

flush() ->
    _ = flush_list(),
    ok.

%% Empties the mailbox (at most 100000 messages); returns a summary.
flush_list() ->
    flush_list(100000, []).

flush_list(0, Acc) ->
    lists:reverse(Acc);
flush_list(N, Acc) ->
    receive
        M -> flush_list(N - 1, [summary(M) | Acc])
    after 0 ->
        lists:reverse(Acc)
    end.

summary({ewpcap, _Ref, DLT, _Time, Length, _Packet}) -> {ewpcap, DLT, Length};
summary(M) -> M.
