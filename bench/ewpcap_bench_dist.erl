%%% @doc The distribution buffer in `make bench' (README, Distribution
%%% buffer): the rows `default_untuned' and `remote_untuned' run exactly as
%%% `default' and `remote', but on a fresh connection to the daemon made
%%% with `{dist_buffer, false}' (inet's default buffer, recbuf autotuned),
%%% in the same run; this module switches the setting, prints the tuned
%%% rows beside the untuned ones with the ratios, checks the targets of
%%% issue 13, and measures what the atom cache could save.
%%%
%%% Every switch drops the connection to the daemon and makes a new one
%%% (a buffer once raised stays, and a recbuf once set stops autotuning):
%%% before an untuned row with `false', after it with the default, so a
%%% tuned row always runs on a connection the library tuned as it does for
%%% a user.
%%% @end
-module(ewpcap_bench_dist).

-export([untuned/2, set/2, client_set/2, print/1, targets/2, atom_cache/0]).

-define(WAIT, 10000).

%%% ===================================================================
%%% Switching
%%% ===================================================================

%% Runs Fun (a row) on a fresh untuned connection to Node, then makes a
%% fresh tuned one; the row gets `dist_buffer' (the untuned connection's
%% buffer).
untuned(Node, Fun) ->
    Buf = set(Node, false),
    try
        (Fun())#{dist_buffer => Buf}
    after
        set(Node, default)
    end.

%% The untuned rows of the client node: the same, there.
client_set(Call, Value) ->
    Call({dist_buffer, Value}).

%% Sets dist_buffer (false or the default) and reconnects to Node, which
%% the library then tunes (or not) as it would; returns the new
%% connection's buffer.
set(Node, Value) ->
    _ = application:load(ewpcap),
    case Value of
        false -> ok = application:set_env(ewpcap, dist_buffer, false);
        default -> ok = application:unset_env(ewpcap, dist_buffer)
    end,
    true = erlang:disconnect_node(Node) orelse true,
    ok = wait_down(Node, erlang:monotonic_time(millisecond) + ?WAIT),
    pong = net_adm:ping(Node),
    ok = ewpcap_distbuf:ensure(Node),
    {ok, [{buffer, B}]} = net_kernel:getopts(Node, [buffer]),
    B.

wait_down(Node, Deadline) ->
    case lists:member(Node, nodes(connected)) of
        false ->
            ok;
        true ->
            erlang:monotonic_time(millisecond) < Deadline orelse erlang:error({still_up, Node}),
            timer:sleep(10),
            wait_down(Node, Deadline)
    end.

%%% ===================================================================
%%% Report
%%% ===================================================================

%% Tuned against untuned, per (size, rate): CPU per packet of ewpcapd and
%% of the receiving node, delivered pps, drops, and the ratios.
print(Rows) ->
    Pairs = pairs(Rows),
    Pairs =:= [] orelse [] =:= [P || {_, T, _, _, _} = P <- Pairs, string:find(T, "norelay") =:= nomatch] orelse begin
        io:format("Section 1: tuned (the library's 1 MiB distribution buffer and, for "
                  "default, the relay) against untuned (dist_buffer false, relay false), and "
                  "the relay alone (default/default_norelay), same run;~nCPU us per delivered "
                  "packet, ewpcapd + receiving node; ratio tuned/untuned~n~n"),
        io:format("| size | rows | rate | untuned CPU us/pkt (daemon + node) | tuned | ratio | "
                  "untuned pps / drops | tuned pps / drops |~n|---|---|---|---:|---:|---:|---:|---:|~n"),
        [io:format("| ~b | ~s | ~s | ~s | ~s | ~.2fx | ~s / ~s | ~s / ~s |~n",
                   [S, T, ewpcap_bench_report:rate_str(Rate), cpu_str(U), cpu_str(Tu),
                    cpu(Tu) / cpu(U), ewpcap_bench_report:fmt_int(maps:get(delivered_pps, U)),
                    ewpcap_bench_report:fmt_int(maps:get(drops, U)),
                    ewpcap_bench_report:fmt_int(maps:get(delivered_pps, Tu)),
                    ewpcap_bench_report:fmt_int(maps:get(drops, Tu))])
         || {S, T, Rate, Tu, U} <- Pairs],
        Ratios = [cpu(Tu) / cpu(U) || {_, T, _, Tu, U} <- Pairs, string:find(T, "norelay") =:= nomatch],
        io:format("~nCPU per packet tuned/untuned: geometric mean ~.2fx over ~b pairs "
                  "(~.2f-~.2fx)~n~n",
                  [geomean(Ratios), length(Ratios), lists:min(Ratios), lists:max(Ratios)])
    end,
    ok.

%% {Size, "tuned/untuned", Rate, TunedRow, UntunedRow}
pairs(Rows) ->
    Ok = [R || #{cpu_us_per_pkt := C} = R <- Rows, C > 0, maps:get(daemon, R, current) =/= before],
    [{S, atom_to_list(T) ++ "/" ++ atom_to_list(U), Rate, Tu, Un}
     || {T, U} <- [{default, default_untuned}, {remote, remote_untuned},
                   {default, default_norelay}],
        #{mode := M1, size := S, rate := Rate} = Tu <- Ok, M1 =:= T,
        #{mode := M2, size := S2, rate := Rate2} = Un <- Ok, M2 =:= U, S2 =:= S, Rate2 =:= Rate].

cpu(#{cpu_us_per_pkt := C}) -> C.

cpu_str(#{cpu_us_per_pkt := C} = R) ->
    io_lib:format("~.2f (~.2f + ~.2f)", [float(C), float(maps:get(cpu_daemon_us_per_pkt, R, 0.0)),
                                        float(maps:get(cpu_beam_us_per_pkt, R, 0.0))]).

geomean(L) ->
    math:exp(lists:sum([math:log(X) || X <- L]) / length(L)).

%%% ===================================================================
%%% Targets (issue 13), when the untuned rows ran
%%% ===================================================================

%% Find(Mode, Size, Rate) -> Row | #{}; Target(Name, Pass, Detail).
targets(Find, Target) ->
    Unpaced = 0,
    case Find(default_untuned, 64, Unpaced) =:= #{} andalso Find(default_untuned, 1000, Unpaced) =:= #{} of
        true ->
            [];
        false ->
            [untuned_target(Find, Target, 1000, 0.4), untuned_target(Find, Target, 64, 0.7),
             batch_target(Find, Target)]
    end.

untuned_target(Find, Target, Size, Max) ->
    Name = io_lib:format("1 packet/message, ~b B, unpaced: CPU per packet <= ~.1fx the untuned "
                         "row's, 0 drops", [Size, Max]),
    case {Find(default, Size, 0), Find(default_untuned, Size, 0)} of
        {#{cpu_us_per_pkt := T, drops := D} = Tu, #{cpu_us_per_pkt := U} = Un} when U > 0 ->
            Target(Name, T =< Max * U andalso D =:= 0,
                   io_lib:format("~.2f vs ~.2f us/pkt: ~.2fx; ~s drops at ~s pps offered "
                                 "(untuned: ~s drops, ~s pps delivered of ~s offered)~s",
                                 [float(T), float(U), T / U, ewpcap_bench_report:fmt_int(D),
                                  ewpcap_bench_report:fmt_int(maps:get(offered_pps, Tu)),
                                  ewpcap_bench_report:fmt_int(maps:get(drops, Un)),
                                  ewpcap_bench_report:fmt_int(maps:get(delivered_pps, Un)),
                                  ewpcap_bench_report:fmt_int(maps:get(offered_pps, Un)),
                                  lighter(Find(batch64, Size, 0), Tu)]));
        _ ->
            Target(Name, false, "row missing")
    end.

%% Beside drops of the default row: the unpaced batch64 row of the same
%% run, which costs the node less per packet. Drops there too say that
%% the capture lost packets to a moment without the CPU (the ring
%% overflowing while ewpcapd waited), not to its cost per packet alone.
lighter(#{cpu_us_per_pkt := B, drops := BD, offered_pps := BOff}, #{cpu_us_per_pkt := T, drops := D})
  when D > 0 ->
    io_lib:format("; batch64 beside it: ~.2f us/pkt (~.2fx), ~s drops at ~s pps offered",
                  [float(B), B / T, ewpcap_bench_report:fmt_int(BD), ewpcap_bench_report:fmt_int(BOff)]);
lighter(_, _) ->
    "".

%% The tuned one-message-per-packet row is default_norelay since the relay
%% (the default row now travels in batches too); the relayed row's ratio
%% is printed beside it.
batch_target(Find, Target) ->
    Name = "{batch, 64}, 64 B, unpaced: CPU per packet <= 0.3x the (tuned) one message per "
           "packet row's (default_norelay)",
    case {Find(batch64, 64, 0), Find(default_norelay, 64, 0), Find(default, 64, 0)} of
        {#{cpu_us_per_pkt := B}, #{cpu_us_per_pkt := D}, Relayed} when D > 0 ->
            Beside = case Relayed of
                         #{cpu_us_per_pkt := R} when R > 0 ->
                             io_lib:format("; the relayed default row ~.2f us/pkt: ~.2fx",
                                           [float(R), B / R]);
                         _ ->
                             ""
                     end,
            Target(Name, B =< 0.3 * D,
                   io_lib:format("~.2f vs ~.2f us/pkt: ~.2fx~s", [float(B), float(D), B / D, Beside]));
        _ ->
            Target(Name, false, "row missing")
    end.

%%% ===================================================================
%%% The atom cache: what it could save at most
%%% ===================================================================

%% ewpcapd sends each packet message with its atoms spelled out (no
%% DFLAG_DIST_HDR_ATOM_CACHE): the control tuple's '' (SEND's unused
%% cookie), the daemon's node name in the Ref, the receiver's node name in
%% the destination pid, and `ewpcap'. The atom cache would replace each by
%% a one-byte index into a cache the receiver keeps; its gain is at most
%% what looking these four atoms up costs. Measured with binary_to_term/1
%% (the same atom lookup the distribution's decoder does): four such atoms
%% against four small integers, and the whole message for scale (the
%% fastest of 7 runs). Returns
%% [{Size, AtomNsPerMsg, MsgNsPerMsg}] for 64 B and 1000 B packets.
atom_cache() ->
    DNode = list_to_atom("ewpcapd_" ++ os:getpid() ++ "_1@benchhost"),
    Atoms = term_to_binary({'', DNode, node(), ewpcap}),
    Ints = term_to_binary({0, 1, 2, 3}),
    %% the fastest of 7 runs of each, alternated: on a shared machine the
    %% other runs only ever add time
    {As, Is} = lists:unzip([{ns_per(Atoms), ns_per(Ints)} || _ <- lists:seq(1, 7)]),
    PerAtoms = lists:min(As) - lists:min(Is),
    Ref = make_ref(),
    [begin
         Pkt = binary:copy(<<0>>, Size),
         Msg = term_to_binary({{2, '', self()}, {ewpcap, Ref, 1, {1700, 123456, 789}, Size, Pkt}}),
         {Size, PerAtoms, lists:min([ns_per(Msg) || _ <- lists:seq(1, 7)])}
     end || Size <- [64, 1000]].

ns_per(Bin) ->
    N = 100000,
    loop(Bin, 10000),
    T0 = erlang:monotonic_time(nanosecond),
    loop(Bin, N),
    (erlang:monotonic_time(nanosecond) - T0) / N.

loop(_, 0) -> ok;
loop(Bin, N) ->
    _ = binary_to_term(Bin),
    loop(Bin, N - 1).
