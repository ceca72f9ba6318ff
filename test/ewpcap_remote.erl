%%% @doc Test helper of the remote suites (ewpcap_remote_SUITE,
%%% ewpcap_remote_fail_SUITE, ewpcap_remote_rpc_SUITE,
%%% ewpcap_remote_policy_SUITE) and of ewpcap_tls_SUITE: their Common Test
%%% callbacks on the three-namespace bed of ewpcap_testbed, and the helpers
%%% their cases call. The packet helpers the live suites share too
%%% (udp_filter/1, marker/1, ethernet_frame/1) are ewpcap_live's, imported
%%% by ewpcap_remote.hrl.
%%%
%%% The bed, `ewp_ct_rt<id>_a|b|c':
%%% ```
%%%   A: client nodes          B: ewpcapd + its epmd         C: traffic peer
%%%   vethA 10.77.1.1 ------- vethBA 10.77.1.2
%%%                           vethB  10.77.2.1 ------------- vethC 10.77.2.2
%%% '''
%%% The daemon is `ewpcap@10.77.1.2' (`ip netns exec B priv/ewpcapd -name
%%% ... --stdin --ticktime 4 -v'), clients are `-name x@10.77.1.1' nodes in
%%% A started with OTP's `peer' over standard_io; C is a non-distributed
%%% node in C that sends UDP datagrams to 10.77.2.1, and tcpdump in C
%%% records what crosses vethC. The Common Test node, in the root
%%% namespace, only drives them: all traffic stays inside the namespaces.
%%%
%%% Each case starts its own daemon and client nodes; end_case/2 stops them
%%% (ewpcap_testbed's janitor). The namespaces are created once per suite
%%% (init_suite/2) and always deleted (end_suite/1), with every process left
%%% inside them (the epmd daemons of A and B included); leftovers of a
%%% killed run are deleted in init_suite/2. Every wait is bounded. This
%%% module, ewpcap_live and the suite are loaded on every peer, so the
%%% suite's funs and the peer-side helpers below run there.
%%% @end
-module(ewpcap_remote).

-export([
    %% Common Test callbacks of the remote suites
    init_suite/2, end_suite/1, init_case/1, end_case/2,
    %% helpers
    ns/2, daemon/1, daemon/2, stop/1, client/2, client/3, capturing_client/3,
    on/2, on/3, on_c/2, send_udp/3, c_udp_socket/2, handles/2, info/2,
    connect_and_call/1, cpu_ticks/1, handle_packets/2, refs/2, connected/2,
    log_text/1, payloads/1, recv_packets/3, quiet/2, record/2, stream/3,
    stream/4, error_of/1, catch_erpc/1, flush/0, tcp_ports/1, udp_frame/6,
    decode_udp/1, capturing_client_on/2, flush_list/0, recv_batches/3,
    recv_quiet/2, numbered_payloads/1, numbered/1, numbered_any/1, chunks/2,
    first_diff/3
]).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-define(EWP_REMOTE_HELPERS, true). % the helpers are defined here, not imported
-include("ewpcap_remote.hrl").

%%% ===================================================================
%%% Common Test callbacks (the suites' own call these)
%%% ===================================================================

%% The bed, the cookie and the traffic peer in C for Suite's cases.
init_suite(Config, Suite) ->
    case {root(), ewpcap_netns:available(), os:find_executable("tcpdump")} of
        {false, _, _} ->
            {skip, "needs root"};
        {_, false, _} ->
            {skip, "no ip command"};
        {_, _, false} ->
            {skip, "no tcpdump"};
        _ ->
            ct:pal("deleted leftover namespaces: ~p", [?TB:cleanup()]),
            ok = ?TB:janitor_start(),
            % the object code sent to the peers, read now
            _ = [?TB:object_code(M) || M <- [?TB, ?MODULE, ewpcap_live, Suite]],
            {ok, Bed} = ?TB:setup(),
            ct:pal("test bed ~p", [Bed]),
            Cookie = "ewpct" ++ integer_to_list(rand:uniform(1 bsl 40)),
            try
                % the traffic peer in C lives as long as the suite
                {ok, C} = ?TB:start_node(Bed, c, #{code => false,
                                                   load => [?MODULE, ewpcap_live, Suite],
                                                   janitor => false}),
                CAgent = ?TB:agent(C),
                [{bed, Bed}, {cookie, Cookie}, {cnode, C}, {cagent, CAgent},
                 {remote_suite, Suite} | Config]
            catch
                Class:Reason:Stack ->
                    _ = ?TB:janitor_stop(),
                    _ = ?TB:teardown(Bed),
                    erlang:raise(Class, Reason, Stack)
            end
    end.

end_suite(Config) ->
    _ = ?TB:janitor_stop(),
    case ?config(cnode, Config) of
        undefined -> ok;
        C -> catch ?TB:stop_node(C)
    end,
    case ?config(bed, Config) of
        undefined ->
            ok;
        Bed ->
            Killed = ?TB:teardown(Bed),
            ct:pal("teardown: killed ~p", [Killed]),
            Left = [NS || R <- [a, b, c], NS <- [?TB:ns(Bed, R)], lists:member(NS, ewpcap_netns:list())],
            ?assertEqual([], Left)
    end,
    ok.

init_case(Config) ->
    flush(),
    % a concurrent run of another suite may have deleted every ewp_ct_*
    % namespace name (ewpcap_netns:cleanup/0): give ours back
    case ?TB:ensure_names(?config(bed, Config)) of
        [] -> ok;
        Restored -> ct:pal("namespace names deleted by someone else, restored: ~p", [Restored])
    end,
    Config.

end_case(Case, Config) ->
    Stopped = ?TB:janitor_clean(),
    ct:pal("~p: stopped ~p", [Case, [{K, maps:get(node, M)} || {K, M} <- Stopped]]),
    % what still runs in the bed: the C node, and epmd in A and B (ended
    % in end_per_suite)
    Bed = ?config(bed, Config),
    ct:pal("left running: ~p",
           [[{Role, [comm(P) || P <- ?TB:ns_pids(?TB:ns(Bed, Role))]} || Role <- [a, b, c]]]),
    % an assertion here would only warn: {fail, _} fails the case itself
    Alive = ?TB:pid_alive(?TB:node_os_pid(?config(cnode, Config))),
    flush(),
    case Alive of
        true -> ok;
        false -> {fail, {ewpcapd_died_during, Case}}
    end.

comm(Pid) ->
    case file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/comm") of
        {ok, B} -> string:trim(binary_to_list(B));
        _ -> "?"
    end.

%%% ===================================================================
%%% Helpers run on the Common Test node
%%% ===================================================================

root() ->
    os:cmd("id -u") =:= "0\n".

ns(Config, Role) ->
    ?TB:ns(?config(bed, Config), Role).

daemon(Config) ->
    daemon(Config, #{}).

daemon(Config, Args) when is_list(Args) ->
    daemon(Config, #{args => Args});
daemon(Config, Opts) ->
    {ok, D} = ?TB:start_daemon(?config(bed, Config), Opts#{cookie => ?config(cookie, Config)}),
    D.

stop(D) ->
    ?TB:stop_daemon(D).

client(Config, Name) ->
    client(Config, Name, #{}).

client(Config, Name, Opts) ->
    Role = maps:get(role, Opts, a),
    {ok, P} = ?TB:start_node(?config(bed, Config), Role,
                             maps:merge(#{name => Name, cookie => ?config(cookie, Config),
                                          load => [?MODULE, ewpcap_live,
                                                   ?config(remote_suite, Config)]},
                                        maps:remove(role, Opts))),
    P.

%% A client node Name with an agent that opened vethB for udp port Port.
capturing_client(Config, Name, Port) ->
    capturing_client_on(client(Config, Name), Port).

capturing_client_on(P, Port) ->
    Ag = ?TB:agent(P),
    {ok, S} = on(P, Ag, fun() -> ewpcap:open(?D, <<"vethB">>, [{filter, udp_filter(Port)}]) end),
    {P, Ag, S, Port}.

on(Peer, Fun) ->
    ?TB:run(Peer, Fun).

on(Peer, Agent, Fun) ->
    ?TB:run(Peer, Agent, Fun).

on_c(Config, Fun) ->
    ?TB:run(?config(cnode, Config), ?config(cagent, Config), Fun).

%% Sends each payload from C (10.77.2.2) to B (10.77.2.1):Port.
send_udp(Config, Port, Payloads) ->
    ok = on_c(Config, fun() ->
        {ok, U} = gen_udp:open(0, [binary, {ip, ?TB:addr(c)}]),
        [ok = gen_udp:send(U, ?TB:addr(b2), Port, P) || P <- Payloads],
        gen_udp:close(U)
    end).

%% A UDP socket of C's agent on Port, and C's MAC address.
c_udp_socket(Config, Port) ->
    on_c(Config, fun() ->
        {ok, Ifs} = inet:getifaddrs(),
        {"vethC", Attrs} = lists:keyfind("vethC", 1, Ifs),
        {hwaddr, Mac} = lists:keyfind(hwaddr, 1, Attrs),
        {ok, U} = gen_udp:open(Port, [binary, {ip, ?TB:addr(c)}, {active, false}]),
        {list_to_binary(Mac), U}
    end).

handles(Peer, Node) ->
    proplists:get_value(handles, info(Peer, Node)).

%% ewpcap:info/1, or its rpc on a node without ewpcap.
info(Peer, Node) ->
    {ok, Info} = on(Peer, fun() ->
        case code:which(ewpcap) of
            non_existing -> rpc:call(Node, ewpcap, info, []);
            _ -> ewpcap:info(Node)
        end
    end),
    Info.

%% ms for Peer's first connection to the daemon and a dev call on it
connect_and_call(Peer) ->
    T0 = erlang:monotonic_time(millisecond),
    ?assertEqual(pong, on(Peer, fun() -> net_adm:ping(?D) end)),
    ?assertMatch({ok, _}, on(Peer, fun() -> ewpcap:dev(?D) end)),
    erlang:monotonic_time(millisecond) - T0.

%% utime + stime of an OS process, in clock ticks (/proc/PID/stat)
cpu_ticks(OsPid) ->
    {ok, Stat} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat"),
    [_, AfterComm] = string:split(binary_to_list(Stat), ")", trailing),
    Fields = string:lexemes(AfterComm, " "),
    % fields 14 and 15 of the line; the first after the comm is field 3
    list_to_integer(lists:nth(12, Fields)) + list_to_integer(lists:nth(13, Fields)).

%% packets the daemon has delivered on handle Ref (its info, asked by Peer)
handle_packets(Peer, Ref) ->
    hd([proplists:get_value(packets, H) || H <- handles(Peer, ?D),
                                           proplists:get_value(ref, H) =:= Ref] ++ [0]).

refs(Peer, Node) ->
    [proplists:get_value(ref, H) || H <- handles(Peer, Node)].

connected(Peer, Node) ->
    proplists:get_value(nodes, info(Peer, Node)).

log_text(D) ->
    unicode:characters_to_list(lists:join("\n", ?TB:daemon_log(D))).

payloads(Packets) ->
    [element(5, decode_udp(P)) || {_, _, P} <- Packets].

%%% ===================================================================
%%% Helpers run on the peers (this module is loaded there)
%%% ===================================================================

%% The next N packets of a handle (a socket or its ref) in the calling
%% process's mailbox, within Timeout ms: [{DLT, Length, Packet}]. Fewer
%% when they do not come.
recv_packets({ewpcap_resource, Ref, _}, N, Timeout) ->
    recv_packets(Ref, N, Timeout);
recv_packets(Ref, N, Timeout) when is_reference(Ref) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    recv_loop(Ref, N, Deadline, []).

recv_loop(_Ref, 0, _Deadline, Acc) ->
    lists:reverse(Acc);
recv_loop(Ref, N, Deadline, Acc) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {ewpcap, Ref, Dlt, _Time, Len, Packet} ->
            recv_loop(Ref, N - 1, Deadline, [{Dlt, Len, Packet} | Acc]);
        {ewpcap_error, Ref, Reason} ->
            lists:reverse([{ewpcap_error, Reason} | Acc])
    after Left ->
        lists:reverse(Acc)
    end.

%% Packets of the handle that arrive within Timeout ms (or are waiting).
quiet(S, Timeout) ->
    recv_packets(S, 1000, Timeout).

%% The packets of a handle until none came for Quiet ms.
recv_quiet({ewpcap_resource, Ref, _}, Quiet) ->
    recv_quiet(Ref, Quiet, []).

recv_quiet(Ref, Quiet, Acc) ->
    receive
        {ewpcap, Ref, Dlt, _Time, Len, Packet} -> recv_quiet(Ref, Quiet, [{Dlt, Len, Packet} | Acc])
    after Quiet ->
        lists:reverse(Acc)
    end.

%% The next N packets of a {batch, _} handle within Timeout ms, in the
%% order of their batches.
recv_batches({ewpcap_resource, Ref, _}, N, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    batch_loop(Ref, N, Deadline, []).

batch_loop(_Ref, N, _Deadline, Acc) when N =< 0 ->
    lists:append(lists:reverse(Acc));
batch_loop(Ref, N, Deadline, Acc) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {ewpcap_batch, Ref, Dlt, Batch} ->
            Ps = [{Dlt, Len, P} || {_Time, Len, P} <- Batch],
            batch_loop(Ref, N - length(Ps), Deadline, [Ps | Acc]);
        {ewpcap, Ref, Dlt, _Time, Len, Packet} ->
            batch_loop(Ref, N - 1, Deadline, [[{Dlt, Len, Packet}] | Acc])
    after Left ->
        lists:append(lists:reverse(Acc))
    end.

record(Ref, Acc) ->
    receive
        {ewpcap, Ref, _, _, _, _} ->
            record(Ref, [erlang:monotonic_time(millisecond) | Acc]);
        {report, From} ->
            From ! {times, lists:reverse(Acc)};
        {peek, From} ->
            From ! {times, lists:reverse(Acc)},
            record(Ref, Acc)
    after 30000 ->
        ok
    end.

%% On C: N datagrams to B, Interval ms apart.
stream(Port, N, Interval) ->
    stream(Port, N, Interval, 10).

%% ... of Size bytes (at least 10).
stream(Port, N, Interval, Size) ->
    {ok, U} = gen_udp:open(0, [binary, {ip, ?TB:addr(c)}, {sndbuf, 4 * 1024 * 1024}]),
    Pad = binary:copy(<<0>>, Size - 10),
    [begin
         ok = gen_udp:send(U, ?TB:addr(b2), Port, <<I:32, "stream", Pad/binary>>),
         Interval > 0 andalso timer:sleep(Interval)
     end || I <- lists:seq(1, N)],
    gen_udp:close(U).

error_of(Fun) ->
    try Fun() of
        Value -> {no_error, Value}
    catch
        error:Reason -> Reason
    end.

catch_erpc(Fun) ->
    try Fun() of
        Value -> {value, Value}
    catch
        Class:Reason -> {Class, strip(Reason)}
    end.

%% erpc's exception stacks hold the remote stack; keep its first frame.
strip({exception, Reason, [Top | _]}) -> {exception, Reason, [Top]};
strip(Other) -> Other.

flush() ->
    _ = flush_list(),
    ok.

flush_list() ->
    flush_list(10000, []).

flush_list(0, Acc) ->
    lists:reverse(Acc);
flush_list(N, Acc) ->
    receive
        M -> flush_list(N - 1, [M | Acc])
    after 0 ->
        lists:reverse(Acc)
    end.

%%% ===================================================================
%%% Packets
%%% ===================================================================

%% Ethernet II / IPv4 / UDP -> {Src, Dst, SrcPort, DstPort, Payload}.
decode_udp(<<_Dst:6/binary, _Src:6/binary, 16#0800:16, 4:4, IHL:4, _Tos:8,
             TotLen:16, _Id:16, _Frag:16, _Ttl:8, 17:8, _Sum:16,
             S1, S2, S3, S4, D1, D2, D3, D4, Rest0/binary>>) ->
    OptLen = (IHL - 5) * 4,
    <<_Opts:OptLen/binary, SPort:16, DPort:16, ULen:16, _USum:16, Rest/binary>> = Rest0,
    PayLen = ULen - 8,
    TotLen = 20 + OptLen + ULen,
    Payload = binary:part(Rest, 0, min(PayLen, byte_size(Rest))),
    {{S1, S2, S3, S4}, {D1, D2, D3, D4}, SPort, DPort, Payload}.

%% Payloads numbered 1 to N, 1,400 bytes each: <<I:32, 1396 bytes of I rem 251>>.
numbered_payloads(N) ->
    [<<I:32, (binary:copy(<<(I rem 251)>>, 1396))/binary>> || I <- lists:seq(1, N)].

%% Payloads numbered 1, 2, 3, ... each whole (numbered_payloads/1):
%% {Count, none} or {Count, {bad_at, Index}}.
numbered(Payloads) ->
    numbered(Payloads, 1, fun(I, Seq) -> Seq =:= I end).

%% ... numbered in increasing order, with gaps allowed.
numbered_any(Payloads) ->
    numbered(Payloads, 1, fun(_I, _Seq) -> true end).

numbered(Payloads, First, Want) ->
    {Count, Bad, _} =
        lists:foldl(fun(P, {I, none, Last}) ->
                            case P of
                                <<Seq:32, Rest/binary>> when Seq > Last ->
                                    case Want(I, Seq) andalso
                                        Rest =:= binary:copy(<<(Seq rem 251)>>, 1396) of
                                        true -> {I + 1, none, Seq};
                                        false -> {I + 1, {bad_at, I}, Last}
                                    end;
                                _ ->
                                    {I + 1, {bad_at, I}, Last}
                            end;
                       (_, {I, Bad, Last}) ->
                            {I + 1, Bad, Last}
                    end, {First, none, 0}, Payloads),
    {Count - First, Bad}.

%% The first place where Got departs from Want (I the index of their heads):
%% none, {missing_from, I}, {extra_at, I} or {differs_at, I}.
first_diff([], [], _) -> none;
first_diff([X | Xs], [X | Ys], I) -> first_diff(Xs, Ys, I + 1);
first_diff(_, [], I) -> {missing_from, I};
first_diff([], _, I) -> {extra_at, I};
first_diff(_, _, I) -> {differs_at, I}.

%% L in lists of K elements (the last one shorter).
chunks([], _) -> [];
chunks(L, K) when length(L) =< K -> [L];
chunks(L, K) ->
    {H, T} = lists:split(K, L),
    [H | chunks(T, K)].

%% The TCP ports of an Ethernet/IPv4 frame ([] when it is not TCP).
tcp_ports(<<_:12/binary, 16#0800:16, 4:4, IHL:4, _:8/binary, 6, _/binary>> = F) ->
    Off = 14 + IHL * 4,
    case F of
        <<_:Off/binary, SPort:16, DPort:16, _/binary>> -> [SPort, DPort];
        _ -> []
    end;
tcp_ports(_) ->
    [].

%% An Ethernet/IPv4/UDP frame (UDP checksum 0) to DstMac.
udp_frame(DstMac, {S1, S2, S3, S4}, {D1, D2, D3, D4}, SPort, DPort, Payload) ->
    ULen = 8 + byte_size(Payload),
    Hdr0 = <<4:4, 5:4, 0, (20 + ULen):16, 1:16, 2#010:3, 0:13, 64, 17, 0:16,
             S1, S2, S3, S4, D1, D2, D3, D4>>,
    Sum = ip_checksum(Hdr0),
    <<Pre:10/binary, _:16, Post/binary>> = Hdr0,
    <<DstMac/binary, 16#02, 16#00, 16#5E, 16#00, 16#53, 16#02, 16#0800:16,
      Pre/binary, Sum:16, Post/binary, SPort:16, DPort:16, ULen:16, 0:16, Payload/binary>>.

ip_checksum(Bin) ->
    S = lists:sum([W || <<W:16>> <= Bin]),
    S1 = (S band 16#FFFF) + (S bsr 16),
    S2 = (S1 band 16#FFFF) + (S1 bsr 16),
    (bnot S2) band 16#FFFF.
