%%% @doc make bench: the ratios of the rows, the printed tables and the
%%% files (results.json, results.csv, plot.gp) (ewpcap_bench is the driver).
%%% @end
-module(ewpcap_bench_report).

-include("ewpcap_bench.hrl").

-export([add_ratios/1, fmt_drops/1, fmt_int/1, print_extra/2, print_table/2,
         print_targets/1, rate_str/1, say/2, write_results/5]).

%%% -------------------------------------------------------------------
%%% Ratios, printing, files
%%% -------------------------------------------------------------------

add_ratios(Rows) ->
    Get = fun(Mode, Size, Rate) ->
              case [D || #{mode := M, size := S, rate := R, delivered_pps := D} <- Rows,
                         M =:= Mode, S =:= Size, R =:= Rate] of
                  [D | _] when D > 0 -> D;
                  _ -> undefined
              end
          end,
    [case Row of
         #{delivered_pps := D, size := S, rate := R} ->
             Ceil = Get(ceiling, S, R),
             Base = Get(baseline, S, 0),
             Idle = Get(baseline_idle, S, 0),
             %% the baselines are unpaced: only unpaced rows compare with them
             {XBase, XIdle} = case R of
                                  0 -> {ratio(D, Base), ratio(D, Idle)};
                                  _ -> {null, null}
                              end,
             maps:merge(Row#{x_ceiling => ratio(D, Ceil), x_baseline => XBase,
                             x_baseline_idle => XIdle}, cpu_per_pkt(Row));

         _ ->
             Row
     end || Row <- Rows].

%% CPU per delivered packet, of the daemon (pcapcount, the sending node),
%% of the receiving node and both: from the scheduler's nanoseconds where
%% the row has them (the ewpcapd rows), else from clock ticks.
cpu_per_pkt(#{received := N} = Row) ->
    {D, B} = case Row of
                 #{cpu_daemon_ns := Dn, cpu_beam_ns := Bn} -> {Dn / 1.0e9, Bn / 1.0e9};
                 #{cpu_daemon_s := Ds, cpu_beam_s := Bs} -> {Ds, Bs}
             end,
    Per = fun(S) -> round(S * 1.0e8 / max(1, N)) / 100 end,
    #{cpu_daemon_us_per_pkt => Per(D), cpu_beam_us_per_pkt => Per(B),
      cpu_us_per_pkt => Per(D + B)}.

ratio(_, undefined) -> null;
ratio(A, B) -> round(A / B * 1000) / 1000.

print_table(Rows, Cfg) ->
    io:format("~nResults (~s; ~b packets per row, at most ~b s at a paced rate; load average ~s at start, ~s at end, "
              "CPU idle before the run ~b%;~n"
              "drops = pcap drop+ifdrop / ewpcapd's own; lost = sent - pcap recv;~n"
              "CPU s: ewpcapd (pcapcount; sending beam for baseline) / receiving beam);~n"
              "baseline: with pktgen flooding beside it as in the capture rows; baseline_idle: alone~n~n",
              [maps:get(machine, Cfg), maps:get(count, Cfg), maps:get(row_secs, Cfg), maps:get(loadavg, Cfg),
               maps:get(loadavg_end, Cfg), maps:get(idle_before, Cfg)]),
    Hdr = "| size | row | rate | offered pps | delivered pps | drops | lost | CPU daemon s | CPU beam s | CPU us/pkt | x ceiling | x baseline | x idle baseline |",
    io:format("~s~n|---|---|---|---|---|---|---|---|---|---|---|---|---|~n", [Hdr]),
    lists:foreach(
      fun(#{error := E} = R) ->
              io:format("| ~b | ~s | ~s | error: ~s |||||||||| ~n",
                        [maps:get(size, R), maps:get(mode, R), rate_str(maps:get(rate, R)), E]);
         (R) ->
              io:format("| ~b | ~s | ~s | ~s | ~s | ~s | ~b | ~.2f | ~.2f | ~.1f | ~s | ~s | ~s |~n",
                        [maps:get(size, R), maps:get(mode, R), rate_str(maps:get(rate, R)),
                         fmt_int(maps:get(offered_pps, R)), fmt_int(maps:get(delivered_pps, R)),
                         fmt_drops(R), maps:get(lost, R),
                         float(maps:get(cpu_daemon_s, R)), float(maps:get(cpu_beam_s, R)),
                         float(maps:get(cpu_us_per_pkt, R)),
                         fmt_ratio(maps:get(x_ceiling, R, null)), fmt_ratio(maps:get(x_baseline, R, null)),
                         fmt_ratio(maps:get(x_baseline_idle, R, null))])
      end, Rows),
    io:format("~nUnpaced rows, delivered pps of each run (the median one is in the table):~n"),
    [io:format("  ~4b B ~-14s ~s~n", [S, M, lists:join(", ", [fmt_int(D) || D <- Ds])])
     || #{size := S, mode := M, rate := 0, runs_delivered_pps := Ds} <- Rows],
    io:format("~n").

print_extra(Latency, Rss) ->
    case Latency of
        #{p99_us := _} ->
            io:format("Latency, immediate mode, 64 B at 1k pps (~b packets): p50 ~.1f us, p90 ~.1f us, "
                      "p99 ~.1f us, p99.9 ~.1f us, max ~.1f us~n",
                      [maps:get(received, Latency), float(maps:get(p50_us, Latency)),
                       float(maps:get(p90_us, Latency)), float(maps:get(p99_us, Latency)),
                       float(maps:get(p999_us, Latency)), float(maps:get(max_us, Latency))]);
        _ ->
            io:format("Latency: failed~n")
    end,
    case Rss of
        #{rss_max_stopped_kib := _} ->
            io:format("RSS: ewpcapd VmRSS ~b KiB after open, ~b KiB before SIGSTOP of the client, "
                      "max ~b KiB while stopped ~b ms (1000 B at ~s pps), ~b KiB after; "
                      "pcap drops ~b, ewpcapd drops ~b, ~b of ~b delivered~n~n",
                      [maps:get(rss_open_kib, Rss), maps:get(rss_before_stop_kib, Rss),
                       maps:get(rss_max_stopped_kib, Rss), maps:get(stopped_ms, Rss),
                       fmt_int(maps:get(offered_pps, Rss)), maps:get(rss_after_kib, Rss),
                       maps:get(pcap_drop, Rss), maps:get(daemon_drops, Rss),
                       maps:get(received, Rss), maps:get(sent, Rss)]);
        _ ->
            io:format("RSS: failed~n~n")
    end.

print_targets(Targets) ->
    io:format("Targets:~n"),
    [io:format("  ~s  ~s~n        ~s~n", [case P of true -> "PASS"; false -> "FAIL" end, N, D])
     || #{name := N, pass := P, detail := D} <- Targets],
    io:format("~n").

write_results(Cfg, Rows, Latency, Rss, Targets) ->
    Out = maps:get(out, Cfg),
    Doc = #{machine => list_to_binary(lists:flatten(maps:get(machine, Cfg))),
            kernel => list_to_binary(maps:get(kernel, Cfg)),
            loadavg_at_start => list_to_binary(maps:get(loadavg, Cfg)),
            loadavg_at_end => list_to_binary(maps:get(loadavg_end, Cfg)),
            cpu_idle_before_pct => maps:get(idle_before, Cfg),
            count_per_row => maps:get(count, Cfg),
            max_secs_per_paced_row => maps:get(row_secs, Cfg),
            filter => <<?FILTER>>,
            date => list_to_binary(calendar:system_time_to_rfc3339(erlang:system_time(second))),
            rows => [maps:map(fun(_, V) when is_atom(V), V =/= null, V =/= true, V =/= false ->
                                      atom_to_binary(V);
                                 (_, V) -> V
                              end, R) || R <- Rows],
            latency => Latency,
            rss => Rss,
            targets => Targets,
            atom_cache => [#{size => S, atoms_ns => A, message_ns => M}
                           || {S, A, M} <- maps:get(atom_cache, Cfg, [])]},
    ok = file:write_file(filename:join(Out, "results.json"), [json(Doc), $\n]),
    %% a before/after run (BENCH_EWPCAPD_BEFORE) adds a last column, daemon
    Cmp = maps:get(ewpcapd_before, Cfg) =/= undefined,
    DCol = fun(#{daemon := D}) when Cmp -> [$, | atom_to_list(D)];
              (_) when Cmp -> ",";   % ceiling, baselines: no ewpcapd
              (_) -> ""
           end,
    Csv = ["mode,size,rate,offered_pps,delivered_pps,received,sent,drops,lost,cpu_daemon_s,cpu_beam_s,cpu_us_per_pkt,x_ceiling,x_baseline,x_baseline_idle",
           case Cmp of true -> ",daemon\n"; false -> "\n" end
           | [io_lib:format("~s,~b,~b,~b,~b,~b,~b,~b,~b,~.3f,~.3f,~.1f,~s,~s,~s~s~n",
                            [maps:get(mode, R), maps:get(size, R), maps:get(rate, R),
                             maps:get(offered_pps, R), maps:get(delivered_pps, R),
                             maps:get(received, R), maps:get(sent, R), maps:get(drops, R),
                             maps:get(lost, R), float(maps:get(cpu_daemon_s, R)),
                             float(maps:get(cpu_beam_s, R)),
                             float(maps:get(cpu_us_per_pkt, R)),
                             fmt_ratio(maps:get(x_ceiling, R, null)),
                             fmt_ratio(maps:get(x_baseline, R, null)),
                             fmt_ratio(maps:get(x_baseline_idle, R, null)), DCol(R)])
              || R <- Rows, not is_map_key(error, R)]],
    ok = file:write_file(filename:join(Out, "results.csv"), Csv),
    ok = file:write_file(filename:join(Out, "plot.gp"), plot_script(Cfg, Rows)),
    say("bench: wrote ~s/results.json, results.csv, plot.gp", [Out]).

%% A gnuplot script with the data inline: one panel per frame size,
%% delivered against offered pps, one line per row kind.
plot_script(Cfg, Rows) ->
    Good = [R || R <- Rows, not is_map_key(error, R), maps:get(daemon, R, current) =/= before],
    Sizes = maps:get(sizes, Cfg),
    Modes = maps:get(modes, Cfg) ++ [baseline, baseline_idle],
    Blocks = [[io_lib:format("$d_~s_~b << EOD~n", [M, S]),
               [io_lib:format("~b ~b~n", [maps:get(offered_pps, R), maps:get(delivered_pps, R)])
                || R <- lists:sort(fun(A, B) -> maps:get(offered_pps, A) =< maps:get(offered_pps, B) end,
                                   [R || #{mode := M1, size := S1} = R <- Good, M1 =:= M, S1 =:= S])],
               "EOD\n"]
              || S <- Sizes, M <- Modes],
    Styles = #{ceiling => "lw 2 lc rgb '#000000' pt 7",
               default => "lw 2 lc rgb '#d62728' pt 5",
               default_untuned => "lw 1 dt 4 lc rgb '#d62728' pt 5",
               default_norelay => "lw 1 dt 2 lc rgb '#9467bd' pt 3",
               remote_untuned => "lw 1 dt 4 lc rgb '#ff7f0e' pt 4",
               batch64 => "lw 2 lc rgb '#1f77b4' pt 9",
               remote => "lw 2 dt 2 lc rgb '#ff7f0e' pt 4",
               remote_batch64 => "lw 2 dt 2 lc rgb '#2ca02c' pt 8",
               remote_tls => "lw 2 dt 3 lc rgb '#d62728' pt 6",
               remote_tls_batch64 => "lw 2 dt 3 lc rgb '#9467bd' pt 12",
               snap1600 => "lw 2 dt 4 lc rgb '#8c564b' pt 6",
               baseline => "lc rgb '#9467bd' pt 13 ps 2",
               baseline_idle => "lc rgb '#9467bd' pt 12 ps 2"},
    Panels = [[io_lib:format("set title '~b B frames'~n", [S]),
               "plot x with lines dt 3 lc rgb '#999999' title 'delivered = offered', \\\n",
               lists:join(", \\\n",
                          [io_lib:format("  $d_~s_~b with ~s ~s title '~s'",
                                         [M, S, case M of baseline -> "points"; baseline_idle -> "points"; _ -> "linespoints" end,
                                          maps:get(M, Styles, "lw 1"), M])
                           || M <- Modes]),
               "\n"]
              || S <- Sizes],
    [Blocks,
     "set terminal pngcairo size 1400,560 font 'sans,10'\n",
     "set output 'plot.png'\n",
     "set termoption noenhanced\nset key top left\nset grid\n",
     "set xlabel 'offered pps'\nset ylabel 'delivered pps (to the owner)'\n",
     "set format x '%.0s%c'\nset format y '%.0s%c'\nset xrange [0:*]\nset yrange [0:*]\n",
     io_lib:format("set multiplot layout 1,~b title 'ewpcap bench: ~s'~n",
                   [length(Sizes), maps:get(machine, Cfg)]),
     Panels,
     "unset multiplot\n"].

%% A small JSON encoder: maps, lists, numbers, binaries, true/false/null,
%% other atoms as strings.
json(M) when is_map(M) ->
    ["{", lists:join(",", [[json_str(K), ":", json(V)]
                           || {K, V} <- lists:sort(maps:to_list(M))]), "}"];
json(L) when is_list(L) -> ["[", lists:join(",", [json(V) || V <- L]), "]"];
json(true) -> "true";
json(false) -> "false";
json(null) -> "null";
json(undefined) -> "null";
json(A) when is_atom(A) -> json_str(A);
json(I) when is_integer(I) -> integer_to_list(I);
json(F) when is_float(F) -> float_to_list(F, [{decimals, 4}, compact]);
json(B) when is_binary(B) -> json_str(B).

json_str(A) when is_atom(A) -> json_str(atom_to_binary(A));
json_str(B) ->
    Esc = lists:map(fun($") -> "\\\"";
                       ($\\) -> "\\\\";
                       ($\n) -> "\\n";
                       (C) when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
                       (C) -> C
                    end, unicode:characters_to_list(B)),
    ["\"", unicode:characters_to_binary(Esc), "\""].

rate_str(0) -> "unpaced";
rate_str(R) when R rem 1000 =:= 0 -> integer_to_list(R div 1000) ++ "k";
rate_str(R) -> integer_to_list(R).

fmt_int(undefined) -> "-";
fmt_int(N) when is_float(N) -> fmt_int(round(N));
fmt_int(N) when is_integer(N) ->
    S = integer_to_list(N),
    lists:reverse(group(lists:reverse(S))).

group([A, B, C, D | T]) -> [A, B, C, $, | group([D | T])];
group(L) -> L.

fmt_drops(#{mode := baseline}) -> "-";
fmt_drops(#{mode := baseline_idle}) -> "-";
fmt_drops(#{pcap_drop := P, pcap_ifdrop := I, daemon_drops := D}) ->
    io_lib:format("~b/~b", [P + I, D]);
fmt_drops(_) -> "-".

fmt_ratio(null) -> "";
fmt_ratio(F) -> io_lib:format("~.2f", [float(F)]).

say(Fmt, Args) ->
    io:format(Fmt ++ "~n", Args).
