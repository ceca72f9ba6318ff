%%% @doc The before/after comparison of `make bench' (BENCH_EWPCAPD_BEFORE,
%%% see bench/run.sh): ewpcap_bench runs every row that runs ewpcapd with
%%% the current binary and with the old one, interleaved, BENCH_REPEAT
%%% times each; this module measures their CPU precisely and prints the
%%% table that puts each (mode, size, rate) of the two binaries side by
%%% side.
%%%
%%% CPU here is the on-CPU time the scheduler accounts in nanoseconds
%%% (`/proc/PID/task/*/schedstat', first field, summed over the threads),
%%% not the utime+stime clock ticks of the main table: ewpcapd uses
%%% 0.1-0.5 s of CPU in a row, which is 10-50 ticks at 100 Hz, too coarse
%%% to tell 5% apart. Every figure is the median over the runs of one
%%% binary; the run-to-run spread of a binary is (max - min) / median
%%% over its runs.
%%% @end
-module(ewpcap_bench_cmp).

-export([cpu_ns/3, cpu_ns_used/2, runs/2, print/2]).

%%% ===================================================================
%%% Measuring
%%% ===================================================================

%% {ewpcapd's, the receiving node's} on-CPU nanoseconds so far: every
%% ewpcapd row has them, and its CPU per packet comes from them (issue 13:
%% CPU per packet is the headline, and 0.1-0.5 s of ticks is too coarse).
cpu_ns(DPid, BPid, _Ctx) ->
    {task_ns(DPid), task_ns(BPid)}.

cpu_ns_used({D0, B0}, {D1, B1}) ->
    #{cpu_daemon_ns => D1 - D0, cpu_beam_ns => B1 - B0}.

%% Sum over the threads of a process (its threads live as long as it
%% does: ewpcapd's loop and compile workers, the beam's schedulers).
task_ns(Pid) ->
    Dir = "/proc/" ++ integer_to_list(Pid) ++ "/task",
    case file:list_dir(Dir) of
        {ok, Tids} ->
            lists:sum([thread_ns(filename:join([Dir, T, "schedstat"])) || T <- Tids]);
        {error, _} ->
            0
    end.

thread_ns(File) ->
    case file:read_file(File) of
        {ok, B} ->
            [Ns | _] = string:lexemes(B, " \n"),
            binary_to_integer(Ns);
        {error, _} ->
            0
    end.

%% The row that stands for a binary (the run with the median delivered
%% rate, as for every row) plus each run's figures, from which print/2
%% takes medians and spreads.
runs(Row, Runs) ->
    Good = [R || #{received := N} = R <- Runs, N > 0],
    Row#{runs_delivered_pps => [maps:get(delivered_pps, R) || R <- Good],
         runs_drops => [maps:get(drops, R) || R <- Good],
         runs_daemon_us_per_pkt => [us_per_pkt(cpu_daemon_ns, cpu_daemon_s, R) || R <- Good],
         runs_beam_us_per_pkt => [us_per_pkt(cpu_beam_ns, cpu_beam_s, R) || R <- Good]}.

us_per_pkt(NsKey, SKey, #{received := N} = R) ->
    Ns = case R of
             #{NsKey := V} -> V;
             #{SKey := S} -> S * 1.0e9
         end,
    Ns / 1000 / N.

%%% ===================================================================
%%% The table
%%% ===================================================================

%% Prints the before/after table of the rows that have both binaries, and
%% writes it to BENCH_OUT/before_after.md too.
print(Rows, Cfg) ->
    Keys = [{S, M, R} || #{daemon := current, mode := M, size := S, rate := R} <- Rows],
    Pairs = [{K, find(current, K, Rows), find(before, K, Rows)} || K <- Keys],
    Lines = [line(K, A, B) || {K, A, B} <- Pairs],
    Good = [L || #{x_cpu := X} = L <- Lines, X =/= null],
    Text = [io_lib:format("~nBefore/after: current ewpcapd vs ~s (BENCH_EWPCAPD_BEFORE), ~b runs of each "
                          "per row, interleaved;~n"
                          "each figure the median over its runs; (spread) = (max - min) / median over the runs "
                          "of one binary;~n"
                          "CPU: on-CPU ns from schedstat per delivered packet, of ewpcapd and of the "
                          "receiving node;~n"
                          "x = after / before; runs: '=' the after and before runs of ewpcapd CPU/pkt overlap, "
                          "'+' every after run above every before run, '-' below~n~n",
                          [maps:get(ewpcapd_before, Cfg), maps:get(repeat, Cfg)]),
            "| size | mode | rate | delivered pps after (spread) | before (spread) | x | drops after | before "
            "| ewpcapd us/pkt after (min-max) | before (min-max) | x | runs | node us/pkt after | before | x |\n"
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|---:|---:|---:|\n",
            [fmt_line(L) || L <- Lines],
            summary(Good),
            "\n"],
    io:format("~s", [Text]),
    Out = maps:get(out, Cfg),
    ok = file:write_file(filename:join(Out, "before_after.md"), Text),
    ok.

find(Daemon, {S, M, R}, Rows) ->
    case [Row || #{daemon := D, mode := M1, size := S1, rate := R1} = Row <- Rows,
                 D =:= Daemon, M1 =:= M, S1 =:= S, R1 =:= R] of
        [Row | _] -> Row;
        [] -> #{}
    end.

%% The figures of one (size, mode, rate); null where a side has no run.
line(Key, A, B) ->
    Fa = figures(A),
    Fb = figures(B),
    #{key => Key, a => Fa, b => Fb,
      x_pps => ratio(fig(pps, Fa), fig(pps, Fb)),
      x_cpu => ratio(fig(cpu, Fa), fig(cpu, Fb)),
      x_beam => ratio(fig(beam, Fa), fig(beam, Fb)),
      runs => overlap(fig(cpus, Fa), fig(cpus, Fb))}.

figures(#{runs_delivered_pps := [_ | _] = Pps} = R) ->
    Cpus = maps:get(runs_daemon_us_per_pkt, R),
    #{pps => median(Pps), pps_spread => spread(Pps),
      drops => median(maps:get(runs_drops, R)),
      cpu => median(Cpus), cpus => Cpus,
      beam => median(maps:get(runs_beam_us_per_pkt, R))};
figures(_) ->
    #{}.

fig(K, F) -> maps:get(K, F, null).

overlap(null, _) -> null;
overlap(_, null) -> null;
overlap(A, B) ->
    case {lists:min(A) > lists:max(B), lists:max(A) < lists:min(B)} of
        {true, _} -> "+";
        {_, true} -> "-";
        _ -> "="
    end.

fmt_line(#{key := {S, M, R}, a := Fa, b := Fb} = L) ->
    io_lib:format("| ~b | ~s | ~s | ~s | ~s | ~s | ~s | ~s | ~s | ~s | ~s | ~s | ~s | ~s | ~s |~n",
                  [S, M, rate_str(R), fmt_pps(Fa), fmt_pps(Fb), fmt_x(maps:get(x_pps, L)),
                   fmt_n(fig(drops, Fa)), fmt_n(fig(drops, Fb)),
                   fmt_cpu(Fa), fmt_cpu(Fb), fmt_x(maps:get(x_cpu, L)),
                   case maps:get(runs, L) of null -> "-"; O -> O end,
                   fmt_us(fig(beam, Fa)), fmt_us(fig(beam, Fb)), fmt_x(maps:get(x_beam, L))]).

%% Headline: the geometric means of the ratios over the rows, beside the
%% spread of one binary between its own runs.
summary([]) ->
    "\nBefore/after: no row has runs of both binaries\n";
summary(Lines) ->
    Xs = fun(K) -> [X || #{K := X} <- Lines, X =/= null] end,
    Spreads = fun(Side) -> [spread(C) || #{Side := #{cpus := C}} <- Lines] end,
    PpsSpreads = fun(Side) -> [S || #{Side := #{pps_spread := S}} <- Lines] end,
    Count = fun(O) -> length([L || #{runs := O1} = L <- Lines, O1 =:= O]) end,
    io_lib:format("~nHeadline over ~b rows: after/before ewpcapd CPU per packet geometric mean ~.3fx "
                  "(rows ~.2f-~.2fx), delivered pps ~.3fx (rows ~.2f-~.2fx), receiving node CPU per packet ~.3fx.~n"
                  "Run-to-run spread of one binary, ewpcapd CPU per packet: after median ~.1f% (max ~.1f%), "
                  "before median ~.1f% (max ~.1f%); delivered pps: after median ~.1f% (max ~.1f%), "
                  "before median ~.1f% (max ~.1f%).~n"
                  "Rows whose ewpcapd CPU/pkt runs do not overlap: ~b with after above ('+'), ~b below ('-'), "
                  "of ~b (with ~b runs each, about 1 row in ~b falls apart either way by chance).~n",
                  [length(Lines), geomean(Xs(x_cpu)), min0(Xs(x_cpu)), max0(Xs(x_cpu)),
                   geomean(Xs(x_pps)), min0(Xs(x_pps)), max0(Xs(x_pps)), geomean(Xs(x_beam)),
                   pct(median(Spreads(a))), pct(max0(Spreads(a))),
                   pct(median(Spreads(b))), pct(max0(Spreads(b))),
                   pct(median(PpsSpreads(a))), pct(max0(PpsSpreads(a))),
                   pct(median(PpsSpreads(b))), pct(max0(PpsSpreads(b))),
                   Count("+"), Count("-"), length(Lines), runs_of(Lines), chance(runs_of(Lines))]).

%% Runs per binary of the first line (every line has the same count).
runs_of([#{a := #{cpus := C}} | _]) -> length(C);
runs_of(_) -> 1.

%% 1 / P(two sets of N runs of the same distribution do not overlap)
%% = C(2N, N) / 2.
chance(N) when N >= 1 ->
    max(1, binom(2 * N, N) div 2);
chance(_) ->
    1.

binom(N, K) ->
    lists:foldl(fun(I, Acc) -> Acc * (N - K + I) div I end, 1, lists:seq(1, K)).

median([]) -> null;
median(L) ->
    S = lists:sort(L),
    N = length(S),
    case N rem 2 of
        1 -> lists:nth((N + 1) div 2, S);
        0 -> (lists:nth(N div 2, S) + lists:nth(N div 2 + 1, S)) / 2
    end.

spread([]) -> 0.0;
spread(L) ->
    case median(L) of
        M when M > 0 -> (lists:max(L) - lists:min(L)) / M;
        _ -> 0.0
    end.

min0([]) -> 0.0;
min0(L) -> float(lists:min(L)).

max0([]) -> 0.0;
max0(L) -> float(lists:max(L)).

geomean([]) -> 1.0;
geomean(L) ->
    math:exp(lists:sum([math:log(X) || X <- L]) / max(1, length(L))).

ratio(null, _) -> null;
ratio(_, null) -> null;
ratio(_, B) when B == 0 -> null;
ratio(A, B) -> A / B.

pct(null) -> 0.0;
pct(F) -> 100 * float(F).

fmt_pps(#{pps := P, pps_spread := S}) ->
    io_lib:format("~s (~.1f%)", [fmt_int(P), pct(S)]);
fmt_pps(_) ->
    "-".

fmt_cpu(#{cpu := C, cpus := Cs}) ->
    io_lib:format("~.3f (~.3f-~.3f)", [float(C), float(lists:min(Cs)), float(lists:max(Cs))]);
fmt_cpu(_) ->
    "-".

fmt_us(null) -> "-";
fmt_us(F) -> io_lib:format("~.2f", [float(F)]).

fmt_x(null) -> "-";
fmt_x(F) -> io_lib:format("~.3f", [float(F)]).

fmt_n(null) -> "-";
fmt_n(N) -> fmt_int(N).

rate_str(0) -> "unpaced";
rate_str(R) when R rem 1000 =:= 0 -> integer_to_list(R div 1000) ++ "k";
rate_str(R) -> integer_to_list(R).

fmt_int(N) when is_float(N) -> fmt_int(round(N));
fmt_int(N) when is_integer(N) ->
    lists:reverse(group(lists:reverse(integer_to_list(N)))).

group([A, B, C, D | T]) -> [A, B, C, $, | group([D | T])];
group(L) -> L.
