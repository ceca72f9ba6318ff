%%% @doc make bench: the latency in immediate mode, ewpcapd's RSS while its
%%% client node is stopped, and the targets a run is judged by
%%% (ewpcap_bench is the driver).
%%% @end
-module(ewpcap_bench_checks).

-include("ewpcap_bench.hrl").

-export([latency/1, rss_test/1, targets/3]).

%%% -------------------------------------------------------------------
%%% Latency: immediate mode ({timeout, immediate}), 1k pps, owner in this node
%%% -------------------------------------------------------------------

latency(Ctx) ->
    #{local_node := Node, dev := Dev, lat_count := N} = Ctx,
    Counter = ewpcap_bench_nodes:start_counter(fun() -> ewpcap:open(Node, Dev, [{filter, ?FILTER},
                                                             {timeout, immediate}]) end,
                            latency),
    {ok, S} = ewpcap_bench_nodes:counter_handle(Counter),
    Offset = erlang:system_time(nanosecond) - os:system_time(nanosecond),
    Gen = ewpcap_bench_gen:pktgen(64, 1000, N, Ctx),
    Done = ewpcap_bench_nodes:wait_done(Counter, maps:get(sent, Gen), 700, 30000),
    Lat = ewpcap_bench_nodes:counter_latencies(Counter),
    Fin = ewpcap_bench_nodes:finish_handle(Node, S),
    ewpcap_bench_nodes:stop_counter(Counter),
    Sorted = lists:sort(Lat),
    Us = fun(Q) -> percentile(Sorted, Q) / 1000 end,
    R = #{sent => maps:get(sent, Gen),
          received => maps:get(received, Done),
          drops => maps:get(drop, Fin) + maps:get(ifdrop, Fin) + maps:get(daemon_drops, Fin),
          p50_us => Us(0.50), p90_us => Us(0.90), p99_us => Us(0.99),
          p999_us => Us(0.999), max_us => Us(1.0), min_us => Us(0.0),
          clock_offset_ns => Offset},
    R.

percentile([], _) -> 0;
percentile(Sorted, Q) ->
    N = length(Sorted),
    lists:nth(max(1, min(N, ceil(Q * N))), Sorted).

%%% -------------------------------------------------------------------
%%% RSS of ewpcapd while its client node is stopped
%%% -------------------------------------------------------------------

rss_test(Ctx) ->
    #{client := Cli, remote_pid := DPid, dev := Dev} = Ctx,
    #{pid := CPid} = Cli,
    Size = 1000, Rate = 250000, Count = 1125000,   % 4.5 s of flood, 250 MB/s
    StopAfter = 500, StopFor = 3000,
    ok = ewpcap_bench_nodes:client_call(Cli, {open, Dev, [{filter, ?FILTER}]}, 15000),
    RssOpen = ewpcap_bench_proc:rss_kib(DPid),
    Sampler = spawn_link(fun() -> sampler(DPid, []) end),
    GenPort = ewpcap_bench_gen:pktgen_start(Size, Rate, Count, Ctx),
    timer:sleep(StopAfter),
    Sampler ! {mark, self()},
    receive {Sampler, marked} -> ok end,
    RssStop = ewpcap_bench_proc:rss_kib(DPid),
    signal(CPid, "STOP"),
    timer:sleep(StopFor),
    Sampler ! {mark, self()},
    receive {Sampler, marked} -> ok end,
    signal(CPid, "CONT"),
    Gen = ewpcap_bench_gen:pktgen_wait(GenPort, Count, Rate),
    Done = maps:from_list(ewpcap_bench_nodes:client_call(Cli, {wait, maps:get(sent, Gen), 700, 60000}, 70000)),
    Fin = maps:from_list(ewpcap_bench_nodes:client_call(Cli, finish, 15000)),
    Sampler ! {stop, self()},
    Samples = receive {Sampler, samples, Ss} -> Ss end,
    %% samples: [{Phase, Kib}], phase 0 before the stop, 1 during, 2 after
    During = [K || {1, K} <- Samples],
    Half = lists:nthtail(length(During) div 2, During),
    Max = lists:max([RssStop | During]),
    Growth = Max - RssStop,
    LateGrowth = lists:max([0 | Half]) - lists:max([0 | lists:sublist(During, length(During) div 2)]),
    Bound = RssStop + 32 * 1024,
    #{size => Size, rate => Rate, sent => maps:get(sent, Gen),
      offered_pps => maps:get(pps, Gen),
      stopped_ms => StopFor,
      rss_open_kib => RssOpen,
      rss_before_stop_kib => RssStop,
      rss_max_stopped_kib => Max,
      rss_growth_kib => Growth,
      rss_late_growth_kib => max(0, LateGrowth),
      rss_bound_kib => Bound,
      rss_after_kib => ewpcap_bench_proc:rss_kib(DPid),
      received => maps:get(received, Done),
      pcap_drop => maps:get(drop, Fin),
      daemon_drops => maps:get(daemon_drops, Fin),
      samples => length(Samples)}.

sampler(Pid, Acc) ->
    sampler(Pid, 0, Acc).

sampler(Pid, Phase, Acc) ->
    receive
        {mark, From} ->
            From ! {self(), marked},
            sampler(Pid, Phase + 1, Acc);
        {stop, From} ->
            From ! {self(), samples, lists:reverse(Acc)}
    after 20 ->
        sampler(Pid, Phase, [{Phase, ewpcap_bench_proc:rss_kib(Pid)} | Acc])
    end.

signal(Pid, Sig) ->
    {ok, _} = ewpcap_bench_proc:run_cmd("kill", ["-" ++ Sig, integer_to_list(Pid)]),
    ok.

%%% -------------------------------------------------------------------
%%% Targets
%%% -------------------------------------------------------------------

targets(Rows, Latency, Rss) ->
    Find = fun(Mode, Size, Rate) ->
               case [R || #{mode := M, size := S, rate := Ra} = R <- Rows,
                          M =:= Mode, S =:= Size, Ra =:= Rate] of
                   [R | _] -> R;
                   [] -> #{}
               end
           end,
    Sizes = lists:usort([S || #{size := S} <- Rows]),
    Unpaced = 0,
    T1 = case Find(default, 64, 250000) of
             #{drops := D} = R1 when not is_map_key(error, R1) ->
                 target(<<"default options, 64 B, paced 250k pps: 0 drops">>, D =:= 0,
                        io_lib:format("~b drops (pcap ~b + ifdrop ~b + ewpcapd ~b), ~b of ~b delivered",
                                      [D, maps:get(pcap_drop, R1), maps:get(pcap_ifdrop, R1),
                                       maps:get(daemon_drops, R1), maps:get(received, R1),
                                       maps:get(sent, R1)]));
             _ ->
                 target(<<"default options, 64 B, paced 250k pps: 0 drops">>, false, "row missing")
         end,
    T2 = [baseline_target(S, Find(default, S, Unpaced), Find(baseline, S, 0),
                          Find(baseline_idle, S, 0))
          || S <- Sizes],
    T3 = [ratio_target(io_lib:format("{batch, 64}, ~b B, unpaced: delivered >= 0.9x bare libpcap", [S]),
                       Find(batch64, S, Unpaced), Find(ceiling, S, Unpaced), "ceiling")
          || S <- Sizes],
    T4 = [batch_drops_target(S, Rows, Find) || S <- Sizes],
    T5 = case Latency of
             #{p99_us := P99} = L ->
                 target(<<"immediate mode, 1k pps: p99 send-to-owner latency < 1 ms">>, P99 < 1000,
                        io_lib:format("p50 ~.1f us, p99 ~.1f us, max ~.1f us (~b of ~b received)",
                                      [float(maps:get(p50_us, L)), float(P99), float(maps:get(max_us, L)),
                                       maps:get(received, L), maps:get(sent, L)]));
             _ ->
                 target(<<"immediate mode, 1k pps: p99 send-to-owner latency < 1 ms">>, false, "failed")
         end,
    T6 = case Rss of
             #{rss_max_stopped_kib := Max, rss_bound_kib := Bound, rss_late_growth_kib := Late} = Rs ->
                 target(<<"ewpcapd RSS bounded while its client is stopped">>,
                        Max =< Bound andalso Late =< 1024,
                        io_lib:format("VmRSS ~b KiB before SIGSTOP, max ~b KiB during ~b ms stop "
                                      "(bound ~b KiB, growth in 2nd half ~b KiB); pcap drops ~b",
                                      [maps:get(rss_before_stop_kib, Rs), Max, maps:get(stopped_ms, Rs),
                                       Bound, Late, maps:get(pcap_drop, Rs)]));
             _ ->
                 target(<<"ewpcapd RSS bounded while its client is stopped">>, false, "failed")
         end,
    T7 = case lists:member(remote_tls_batch64, [M || #{mode := M} <- Rows]) of
             true -> [tls_target(S, Find(remote_tls_batch64, S, Unpaced),
                                 Find(remote_batch64, S, Unpaced)) || S <- Sizes];
             false -> []
         end,
    T8 = ewpcap_bench_dist:targets(Find, fun target/3),
    [T1] ++ T2 ++ T3 ++ T4 ++ [T5, T6] ++ T7 ++ T8.

%% {batch, 64} over TLS against plaintext: >= 0.9x the packets, <= 1.5x the
%% CPU per packet (ewpcapd and the owner's node together)
tls_target(Size, #{delivered_pps := A, cpu_us_per_pkt := CA},
           #{delivered_pps := B, cpu_us_per_pkt := CB}) when B > 0, CB > 0 ->
    target(io_lib:format("{batch, 64} over TLS, ~b B, unpaced: >= 0.9x the packets of "
                         "remote_batch64 at <= 1.5x its CPU per packet", [Size]),
           A >= 0.9 * B andalso CA =< 1.5 * CB,
           io_lib:format("~s vs ~s pps: ~.2fx; ~.1f vs ~.1f us CPU per packet: ~.2fx",
                         [ewpcap_bench_report:fmt_int(A), ewpcap_bench_report:fmt_int(B), A / B, float(CA), float(CB), CA / CB]));
tls_target(Size, _, _) ->
    target(io_lib:format("{batch, 64} over TLS, ~b B, unpaced: >= 0.9x the packets of "
                         "remote_batch64 at <= 1.5x its CPU per packet", [Size]),
           false, "row missing").

ratio_target(Name, #{delivered_pps := A}, #{delivered_pps := B}, What) when B > 0 ->
    target(iolist_to_binary(Name), A >= 0.9 * B,
           io_lib:format("~s vs ~s ~s pps: ~.2fx", [ewpcap_bench_report:fmt_int(A), What, ewpcap_bench_report:fmt_int(B), A / B]));
ratio_target(Name, _, _, _) ->
    target(iolist_to_binary(Name), false, "row missing").

%% Against the baseline that ran next to the same generator; the ratio to
%% the idle baseline (no generator) is printed beside it.
baseline_target(Size, #{delivered_pps := A} = Row, #{delivered_pps := B} = Base, Idle) when B > 0 ->
    IdleStr = case Idle of
                  #{delivered_pps := I} when I > 0 ->
                      io_lib:format("; idle baseline ~s pps: ~.2fx", [ewpcap_bench_report:fmt_int(I), A / I]);
                  _ ->
                      ""
              end,
    target(io_lib:format("1 packet/message, ~b B, unpaced: delivered >= 0.9x Erlang baseline", [Size]),
           A >= 0.9 * B,
           io_lib:format("~s pps (~s offered) vs baseline ~s pps (generator beside it at ~s pps): ~.2fx~s",
                         [ewpcap_bench_report:fmt_int(A), ewpcap_bench_report:fmt_int(maps:get(offered_pps, Row)), ewpcap_bench_report:fmt_int(B),
                          ewpcap_bench_report:fmt_int(maps:get(load_pps, Base)), A / B, IdleStr]));
baseline_target(Size, _, _, _) ->
    target(io_lib:format("1 packet/message, ~b B, unpaced: delivered >= 0.9x Erlang baseline", [Size]),
           false, "row missing").

%% {batch, 64} has no drops at the highest paced rate the ceiling took
%% without drops (nor loss before the capture).
batch_drops_target(Size, Rows, Find) ->
    Name = iolist_to_binary(io_lib:format("{batch, 64}, ~b B: 0 drops at the highest rate the ceiling took without drops", [Size])),
    Clean = [R || #{mode := ceiling, size := S, drops := 0} = R <- Rows, S =:= Size],
    case lists:sort(fun(A, B) -> maps:get(offered_pps, A) >= maps:get(offered_pps, B) end, Clean) of
        [] ->
            target(Name, false, "the ceiling dropped at every rate");
        [#{rate := Rate, offered_pps := Off} | _] ->
            case Find(batch64, Size, Rate) of
                #{drops := D, offered_pps := BOff} ->
                    target(Name, D =:= 0,
                           io_lib:format("ceiling clean at ~s (~s pps offered); batch64 there: ~b drops at ~s pps offered",
                                         [ewpcap_bench_report:rate_str(Rate), ewpcap_bench_report:fmt_int(Off), D, ewpcap_bench_report:fmt_int(BOff)]));
                _ ->
                    target(Name, false, "row missing")
            end
    end.

target(Name, Pass, Detail) ->
    #{name => iolist_to_binary(Name), pass => Pass, detail => iolist_to_binary(Detail)}.
