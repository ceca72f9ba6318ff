%%% The client side of the interop matrix (test/interop/run): compiled and
%%% run by another Erlang/OTP (OTP 27 in a Debian 13 chroot) against an
%%% ewpcapd started by the script. Plain Erlang, no Common Test: one line
%%% per check, `ok NAME' or `FAIL NAME: Reason', then `RESULT ok|fail'; the
%%% exit status is 0 only when every check passed.
%%%
%%%   erl -name C@127.0.0.1 -setcookie K -pa ebin -pa DIR -ewpcap node D \
%%%       -noshell -s ewpcap_interop main OUTDIR
%%%
%%% OUTDIR/packet.bin gets the captured frame of the byte-identical check
%%% (the script compares it with tcpdump's copy). Every wait is bounded.
-module(ewpcap_interop).

-include("ewpcap.hrl").

-export([main/1, peer_opener/2]).

-define(WAIT, 10000).

main([OutDir]) ->
    Daemon = daemon(),
    Proto = case init:get_argument(proto_dist) of
                {ok, [[P | _] | _]} -> P;
                _ -> "inet_tcp"
            end,
    io:format("client ~s (OTP ~s), daemon ~s, proto_dist ~s~n",
              [node(), erlang:system_info(otp_release), Daemon, Proto]),
    Checks = [{capture_byte_identical, fun() -> capture_byte_identical(Daemon, OutDir) end},
              {rpc_call, fun() -> {ok, _} = rpc:call(Daemon, ewpcap, dev, [], ?WAIT), ok end},
              {erpc_call, fun() -> {ok, _} = erpc:call(Daemon, ewpcap, dev, [], ?WAIT), ok end},
              {rpc_block_call, fun() -> {ok, _} = rpc:block_call(Daemon, ewpcap, dev, [], ?WAIT), ok end},
              {owner_death_closes, fun() -> owner_death(Daemon) end},
              {node_down_closes, fun() -> node_down(Daemon) end},
              {batch, fun() -> batch(Daemon) end},
              {orig_user_api, fun() -> orig_user_api() end}],
    Results = [run(Name, F) || {Name, F} <- Checks],
    Ok = lists:all(fun(R) -> R =:= ok end, Results),
    io:format("RESULT ~s~n", [case Ok of true -> ok; false -> fail end]),
    erlang:halt(case Ok of true -> 0; false -> 1 end).

run(Name, F) ->
    Self = self(),
    {Pid, MRef} = spawn_monitor(fun() -> Self ! {self(), catch F()} end),
    R = receive
            {Pid, ok} -> ok;
            {Pid, Other} -> {fail, Other}
        after 60000 ->
            exit(Pid, kill), {fail, timeout}
        end,
    erlang:demonitor(MRef, [flush]),
    case R of
        ok -> io:format("ok ~s~n", [Name]);
        {fail, Why} -> io:format("FAIL ~s: ~P~n", [Name, Why, 30])
    end,
    R.

daemon() ->
    _ = application:load(ewpcap),
    {ok, D} = application:get_env(ewpcap, node),
    D.

%% One UDP datagram on lo, captured; the frame is written for the script
%% and checked here: Ethernet (zero MACs on lo), IPv4, UDP, our payload.
capture_byte_identical(D, OutDir) ->
    Port = free_port(),
    Payload = <<"ewpcap interop ", (list_to_binary(erlang:system_info(otp_release)))/binary>>,
    {ok, S} = ewpcap:open(D, <<"lo">>, [{filter, "udp and dst port " ++ integer_to_list(Port)}]),
    ok = send_udp(Port, [Payload]),
    Ref = S#ewpcap_resource.ref,
    Frame = receive
                {ewpcap, Ref, 1, _Time, Len, P} when Len =:= byte_size(P) -> P
            after ?WAIT -> error(no_packet)
            end,
    ok = ewpcap:close(S),
    % Ethernet (zero MACs on lo), IPv4 from and to 127.0.0.1, UDP, our payload
    <<0:96, 16#0800:16, 4:4, Ihl:4, _:8, IpLen:16, _:5/binary, 17, _:2/binary,
      127, 0, 0, 1, 127, 0, 0, 1, _/binary>> = Frame,
    IpHdr = Ihl * 4,
    <<_:14/binary, _:IpHdr/binary, _Src:16, Port:16, UdpLen:16, _Sum:16, Payload/binary>> = Frame,
    UdpLen = 8 + byte_size(Payload),
    IpLen = IpHdr + UdpLen,
    ok = file:write_file(filename:join(OutDir, "packet.bin"), Frame).

owner_death(D) ->
    Self = self(),
    Owner = spawn(fun() ->
                          {ok, S} = ewpcap:open(D, <<"lo">>, [{filter, "udp port 9"}]),
                          Self ! {opened, self(), S#ewpcap_resource.ref},
                          receive never -> ok end
                  end),
    Ref = receive {opened, Owner, R} -> R after ?WAIT -> error(not_opened) end,
    true = lists:member(Ref, refs(D)),
    exit(Owner, kill),
    ok = poll(fun() -> not lists:member(Ref, refs(D)) end, ?WAIT).

%% A second node (a peer of this OTP) opens two handles and stops: the
%% daemon closes them.
node_down(D) ->
    Name = list_to_atom("ewp_i_peer_" ++ os:getpid()),
    Ebin = filename:dirname(code:which(ewpcap)),
    Here = filename:dirname(code:which(?MODULE)),
    % the same distribution as this node (TLS: the same optfile)
    Dist = lists:append([["-" ++ atom_to_list(F), V]
                         || F <- [proto_dist, ssl_dist_optfile],
                            {ok, [[V | _] | _]} <- [init:get_argument(F)]]),
    {ok, Peer, Node} = peer:start(#{name => Name, host => "127.0.0.1", longnames => true,
                                    args => ["-setcookie", atom_to_list(erlang:get_cookie()),
                                             "-pa", Ebin, "-pa", Here | Dist]}),
    Refs = erpc:call(Node, ?MODULE, peer_opener, [D, 2], ?WAIT),
    2 = length([R || R <- Refs, lists:member(R, refs(D))]),
    ok = peer:stop(Peer),
    ok = poll(fun() -> [] =:= [R || R <- Refs, lists:member(R, refs(D))] end, ?WAIT),
    false = lists:member(Node, nodes_of(D)),
    ok.

%% On the peer: N handles owned by a process that lives as long as the node.
peer_opener(D, N) ->
    Self = self(),
    spawn(fun() ->
                  Refs = [begin
                              {ok, S} = ewpcap:open(D, <<"lo">>, [{filter, "udp port 9"}]),
                              S#ewpcap_resource.ref
                          end || _ <- lists:seq(1, N)],
                  Self ! {refs, Refs},
                  receive never -> ok end
          end),
    receive {refs, Refs} -> Refs after ?WAIT -> error(peer_not_opened) end.

batch(D) ->
    Port = free_port(),
    {ok, S} = ewpcap:open(D, <<"lo">>, [{filter, "udp and dst port " ++ integer_to_list(Port)},
                                        {batch, 16}]),
    N = 40,
    ok = send_udp(Port, [<<I:32>> || I <- lists:seq(1, N)]),
    Ref = S#ewpcap_resource.ref,
    Batches = collect(Ref, N, []),
    true = lists:all(fun(L) -> length(L) >= 1 andalso length(L) =< 16 end, Batches),
    Seqs = [Seq || L <- Batches, {_, _, P} <- L, <<_:42/binary, Seq:32>> <- [P]],
    Seqs = lists:seq(1, N),
    ok = ewpcap:close(S).

collect(_Ref, Left, Acc) when Left =< 0 ->
    lists:reverse(Acc);
collect(Ref, Left, Acc) ->
    receive
        {ewpcap_batch, Ref, 1, List} -> collect(Ref, Left - length(List), [List | Acc])
    after ?WAIT -> error({missing_packets, Left})
    end.

%% test/ewpcap_compat_SUITE_data/orig_user.erl (copied next to this module
%% by the script, compiled here against include/ as an application
%% depending on ewpcap would): the original API, unchanged.
orig_user_api() ->
    Here = filename:dirname(code:which(?MODULE)),
    {ok, orig_user, Bin} = compile:file(filename:join(Here, "orig_user.erl"),
                                        [binary, return_errors, {i, filename:join(Here, "lib")},
                                         debug_info]),
    {module, orig_user} = code:load_binary(orig_user, "orig_user.beam", Bin),
    false = orig_user:scheduler(),
    [{ok, #ewpcap_stat{}} = orig_user:open_close(Opts) || Opts <- orig_user:option_forms()],
    {ok, _Seen, #ewpcap_stat{}} = capture_orig([], free_port()),
    {ok, _, #ewpcap_stat{}} = capture_orig([{timeout, immediate}, {time_unit, microsecond}],
                                           free_port()),
    ok.

%% orig_user:capture/2 sends one datagram itself
capture_orig(Opts, Port) ->
    orig_user:capture(Opts, Port).

refs(D) ->
    {ok, Info} = ewpcap:info(D),
    [proplists:get_value(ref, H) || H <- proplists:get_value(handles, Info)].

nodes_of(D) ->
    {ok, Info} = ewpcap:info(D),
    proplists:get_value(nodes, Info).

poll(F, Left) when Left =< 0 ->
    case F() of true -> ok; false -> error(timeout) end;
poll(F, Left) ->
    case F() of
        true -> ok;
        false -> receive after 50 -> poll(F, Left - 50) end
    end.

send_udp(Port, Payloads) ->
    {ok, U} = gen_udp:open(0, [binary, {ip, {127, 0, 0, 1}}]),
    [ok = gen_udp:send(U, {127, 0, 0, 1}, Port, P) || P <- Payloads],
    gen_udp:close(U).

free_port() ->
    {ok, U} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}]),
    {ok, P} = inet:port(U),
    gen_udp:close(U),
    P.
