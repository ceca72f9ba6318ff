%%% @doc The driver of `make bench' (see bench/run.sh, which makes the
%%% network namespaces and starts this module with `-run ewpcap_bench main').
%%%
%%% In one run, for each frame size and offered rate, side by side:
%%% <ul>
%%% <li>`ceiling': bench/pcapcount, bare libpcap with ewpcapd's default
%%%     capture options, in the capture namespace;</li>
%%% <li>`baseline': Erlang to Erlang, a peer node sends the tuples ewpcapd
%%%     sends, `{ewpcap, Ref, 1, {M,S,U}, Len, Packet}', to a process of
%%%     this node (unpaced only: offered is what the sender managed), while
%%%     pktgen floods the captured veth beside it as in every capture row
%%%     (nothing captures); `baseline_idle': the same with nothing
%%%     else running;</li>
%%% <li>`default': ewpcap with default options (1 packet per message),
%%%     owner in this node, ewpcapd on the same host (--netns);</li>
%%% <li>`batch64': the same with `{batch, 64}';</li>
%%% <li>`remote', `remote_batch64': the owner on another "host", a node in
%%%     a third namespace that reaches an ewpcapd running inside the capture
%%%     namespace over a veth pair;</li>
%%% <li>`default_untuned', `remote_untuned': `default' and `remote' on a
%%%     connection made with `{dist_buffer, false}' (ewpcap_bench_dist),
%%%     the before of the distribution buffer's before/after.</li>
%%% </ul>
%%% pktgen runs pinned to one CPU (BENCH_GEN_CPU, default 0; "none" does
%%% not pin), so that its kernel work (the veth receive path runs in its
%%% context) stays on that CPU in every row alike, while run.sh starts this
%%% node, and so everything it starts, on the other CPUs;
%%% then the latency in immediate mode at 1k pps and ewpcapd's RSS while
%%% its client node is stopped. Everything is configured through the
%%% environment (BENCH_*, set by run.sh). Results go to
%%% BENCH_OUT/results.json, results.csv and plot.gp (run.sh renders
%%% plot.png). The exit status is 0, or 3 when a target failed.
%%%
%%% With BENCH_EWPCAPD_BEFORE=/path/to/an/older/ewpcapd every row that runs
%%% ewpcapd also runs with that binary, in the same run, interleaved with
%%% the current one; ewpcap_bench_cmp prints the before/after table.
%%% @end
-module(ewpcap_bench).

-include("ewpcap.hrl").

-export([main/0, client/0, baseline_send/3]).
-export([fmt_int/1, rate_str/1]).

-define(FILTER, "udp dst port 9000").
-define(MiB, 1048576).

%%% ===================================================================
%%% Driver
%%% ===================================================================

main() ->
    Status =
        try
            run()
        catch
            C:R:St ->
                io:format("bench: crashed: ~p:~p~n~p~n", [C, R, St]),
                2
        end,
    erlang:halt(Status).

run() ->
    Cfg = config(),
    say("bench: ~s, ~b packets per row (at most ~b s of a paced rate), rates ~w (0 = unpaced), sizes ~w B",
        [maps:get(machine, Cfg), maps:get(count, Cfg), maps:get(row_secs, Cfg),
         maps:get(rates, Cfg), maps:get(sizes, Cfg)]),
    say("bench: pktgen pinned to CPU ~s (BENCH_GEN_CPU), sending ~s",
        [maps:get(gen_cpu, Cfg),
         case Cfg of
             #{gen_dev := GDev, dst_mac := Mac} when is_list(GDev), is_list(Mac) ->
                 io_lib:format("Ethernet frames through a packet socket on ~s to ~s", [GDev, Mac]);
             #{} ->
                 "through a UDP socket"
         end]),
    Idle = cpu_idle_pct(2000),
    say("bench: load average at start: ~s; CPU idle over 2 s before the run: ~b%",
        [maps:get(loadavg, Cfg), Idle]),
    Idle >= 90 orelse
        say("bench: WARNING: other processes are using the CPU; the numbers will be noisy", []),
    {LPort, LNode, LPid} = start_local_daemon(Cfg),
    {RPort, RPid} = start_remote_daemon(Cfg),
    Cli = start_client(Cfg),
    Tls = start_tls(Cfg),
    {BPorts, Before} = start_before_daemons(Cfg, Tls),
    {ok, Peer, PNode} = start_peer(Cfg),
    Ctx = Cfg#{local_node => LNode, local_pid => LPid, remote_pid => RPid, tls => Tls,
               remote_node => remote_node(Cfg, "ewpcap"), before_ctx => Before,
               client => Cli, peer_node => PNode, beam_pid => list_to_integer(os:getpid())},
    AllRows = add_ratios(lists:append([size_rows(Size, Ctx) || Size <- maps:get(sizes, Cfg)])),
    %% the old daemon's rows only go to the before/after table and the files
    Rows1 = [R || R <- AllRows, maps:get(daemon, R, current) =/= before],
    Latency = safe(fun() -> latency(Ctx) end),
    Rss = safe(fun() -> rss_test(Ctx) end),
    Targets = targets(Rows1, Latency, Rss),
    Cfg1 = Cfg#{idle_before => Idle, loadavg_end => loadavg()},
    print_table(Rows1, Cfg1),
    ewpcap_bench_rank:print(Rows1),
    ewpcap_bench_dist:print(Rows1),
    AtomCache = ewpcap_bench_dist:atom_cache(),
    ewpcap_bench_rank:print_atom_cache(AtomCache),
    print_extra(Latency, Rss),
    print_targets(Targets),
    Before =:= undefined orelse ewpcap_bench_cmp:print(AllRows, Cfg1),
    write_results(Cfg1#{atom_cache => AtomCache}, AllRows, Latency, Rss, Targets),
    client_call(Cli, quit, 2000),
    stop_tls(Tls),
    catch peer:stop(Peer),
    lists:foreach(fun stop_port/1, BPorts),
    stop_port(RPort),
    stop_port(LPort),
    case lists:all(fun(#{pass := P}) -> P end, Targets) of
        true -> 0;
        false -> 3
    end.

config() ->
    Root = env("BENCH_ROOT", element(2, file:get_cwd())),
    Out = env("BENCH_OUT", filename:join([Root, "bench", "out"])),
    {ok, Uname} = run_cmd("uname", ["-r"]),
    #{root => Root,
      out => Out,
      gen_ns => env("BENCH_GEN_NS", undefined),
      cap_ns => env("BENCH_CAP_NS", undefined),
      cli_ns => env("BENCH_CLI_NS", undefined),
      dst => env("BENCH_DST", "10.201.0.2"),
      gen_dev => env("BENCH_GEN_DEV", undefined),
      dst_mac => env("BENCH_DST_MAC", undefined),
      dev => list_to_binary(env("BENCH_CAP_DEV", "bc0")),
      cap_addr => env("BENCH_CAP_ADDR", "10.201.1.1"),
      cli_addr => env("BENCH_CLI_ADDR", "10.201.1.2"),
      count => list_to_integer(env("BENCH_COUNT", "400000")),
      rates => [list_to_integer(R) || R <- string:lexemes(env("BENCH_RATES", "20000,50000,100000,250000,500000,0"), ",")],
      sizes => [list_to_integer(S) || S <- string:lexemes(env("BENCH_SIZES", "64,1000"), ",")],
      modes => [list_to_atom(M) || M <- string:lexemes(env("BENCH_MODES", "ceiling,default,default_untuned,batch64,remote,remote_untuned,remote_batch64,remote_tls,remote_tls_batch64"), ",")],
      row_secs => list_to_integer(env("BENCH_ROW_SECS", "5")),
      repeat => list_to_integer(env("BENCH_REPEAT", "3")),
      lat_count => list_to_integer(env("BENCH_LAT_COUNT", "3000")),
      cookie => atom_to_list(erlang:get_cookie()),
      ewpcapd => filename:join([Root, "priv", "ewpcapd"]),
      ewpcapd_before => env("BENCH_EWPCAPD_BEFORE", undefined),
      pktgen => filename:join([Out, "pktgen"]),
      pcapcount => filename:join([Out, "pcapcount"]),
      ebin => filename:join([Root, "ebin"]),
      bench_ebin => filename:join([Out, "ebin"]),
      ip => os:find_executable("ip"),
      taskset => os:find_executable("taskset"),
      gen_cpu => env("BENCH_GEN_CPU", case erlang:system_info(logical_processors_available) of
                                         N when is_integer(N), N >= 2 -> "0";
                                         _ -> "none"
                                     end),
      clk_tck => clk_tck(),
      kernel => string:trim(Uname),
      machine => machine(string:trim(Uname)),
      loadavg => loadavg()}.

machine(Kernel) ->
    Os = case file:read_file("/etc/debian_version") of
             {ok, V} -> "Debian " ++ string:trim(binary_to_list(V));
             _ -> "Linux"
         end,
    io_lib:format("~b vCPU, ~s, kernel ~s, OTP ~s",
                  [erlang:system_info(logical_processors), Os, Kernel,
                   erlang:system_info(otp_release)]).

loadavg() ->
    case file:read_file("/proc/loadavg") of
        {ok, B} -> string:join(lists:sublist(string:lexemes(binary_to_list(B), " "), 3), " ");
        _ -> "?"
    end.

%% Percentage of the machine's CPU time that was idle over Ms.
cpu_idle_pct(Ms) ->
    {B0, I0} = cpu_jiffies(),
    timer:sleep(Ms),
    {B1, I1} = cpu_jiffies(),
    case (B1 - B0) + (I1 - I0) of
        0 -> 100;
        T -> round(100 * (I1 - I0) / T)
    end.

cpu_jiffies() ->
    {ok, B} = file:read_file("/proc/stat"),
    [Line | _] = string:split(B, "\n"),
    [_ | Fs] = string:lexemes(Line, " "),
    [User, Nice, Sys, Idle, IoWait, Irq, SoftIrq, Steal | _] = [binary_to_integer(F) || F <- Fs],
    {User + Nice + Sys + Irq + SoftIrq + Steal, Idle + IoWait}.

env(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        V -> V
    end.

%%% -------------------------------------------------------------------
%%% The rows of one frame size
%%% -------------------------------------------------------------------

size_rows(Size, Ctx) ->
    Idle = safe_row(fun() -> baseline_row(idle, Size, Ctx) end, baseline_idle, Size, 0),
    Loaded = safe_row(fun() -> baseline_row(loaded, Size, Ctx) end, baseline, Size, 0),
    Modes = maps:get(modes, Ctx),
    Rows = [mode_rows(Mode, Size, Rate, Ctx) || Rate <- maps:get(rates, Ctx), Mode <- Modes],
    [Idle, Loaded | lists:append(Rows)].

%% The row of one mode at one size and rate. With BENCH_EWPCAPD_BEFORE and
%% a mode that runs ewpcapd, two rows, `daemon => current' and `daemon =>
%% before': BENCH_REPEAT runs of each (paced rates too: the comparison needs
%% each binary's run-to-run spread), interleaved current, before, current,
%% ... so that both binaries see the same conditions.
mode_rows(Mode, Size, Rate, #{before_ctx := #{} = B} = Ctx)
  when Mode =/= ceiling, Mode =/= baseline, Mode =/= baseline_idle ->
    Pairs = [begin
                 Cur = safe_row(fun() -> row(Mode, Size, Rate, Ctx) end, Mode, Size, Rate, current),
                 Old = safe_row(fun() -> row(Mode, Size, Rate, maps:merge(Ctx, B)) end,
                                Mode, Size, Rate, before),
                 {Cur, Old}
             end || _ <- lists:seq(1, max(1, maps:get(repeat, Ctx)))],
    {Curs, Olds} = lists:unzip(Pairs),
    [ewpcap_bench_cmp:runs(median_row(Curs), Curs), ewpcap_bench_cmp:runs(median_row(Olds), Olds)];
mode_rows(Mode, Size, Rate, Ctx) ->
    [median_row([safe_row(fun() -> row(Mode, Size, Rate, Ctx) end, Mode, Size, Rate)
                 || _ <- lists:seq(1, repeats(Rate, Ctx))])].

%% Unpaced rows are the ones whose offered load depends on how fast pktgen
%% runs beside each capture (it varies by 10% between runs on a small
%% machine): they run BENCH_REPEAT times and the run with the median
%% delivered rate stands for the row (all delivered rates are kept in
%% runs_delivered_pps). Paced rows run once.
repeats(0, #{repeat := N}) -> max(1, N);
repeats(_, _) -> 1.

median_row([Row]) ->
    Row;
median_row(Runs) ->
    case [R || #{delivered_pps := _} = R <- Runs] of
        [] ->
            hd(Runs);
        Good ->
            Sorted = lists:sort(fun(A, B) -> maps:get(delivered_pps, A) =< maps:get(delivered_pps, B) end, Good),
            Median = lists:nth((length(Sorted) + 1) div 2, Sorted),
            Median#{runs_delivered_pps => [maps:get(delivered_pps, R) || R <- Good]}
    end.

safe_row(Fun, Mode, Size, Rate) ->
    safe_row(Fun, Mode, Size, Rate, undefined).

%% Daemon: undefined, or current/before (a before/after run, kept in the
%% row as `daemon').
safe_row(Fun, Mode, Size, Rate, Daemon) ->
    Row = try
              Fun()
          catch
              C:R:St ->
                  say("  ~p ~b B ~s: FAILED ~p:~p ~p", [Mode, Size, rate_str(Rate), C, R, St]),
                  #{error => iolist_to_binary(io_lib:format("~p:~p", [C, R]))}
          end,
    R1 = maps:merge(#{mode => Mode, size => Size, rate => Rate}, Row),
    R2 = case Daemon of
             undefined -> R1;
             _ -> R1#{daemon => Daemon}
         end,
    Label = case Daemon of
                before -> atom_to_list(Mode) ++ " (before)";
                _ -> atom_to_list(Mode)
            end,
    say("  ~ts ~4b B ~-8s offered ~8s delivered ~8s drops ~s",
        [string:pad(Label, 14), Size, rate_str(Rate), fmt_int(maps:get(offered_pps, R1, undefined)),
         fmt_int(maps:get(delivered_pps, R1, undefined)), fmt_drops(R1)]),
    R2.

safe(Fun) ->
    try
        Fun()
    catch
        C:R:St ->
            say("bench: FAILED ~p:~p ~p", [C, R, St]),
            #{error => iolist_to_binary(io_lib:format("~p:~p", [C, R]))}
    end.

row(ceiling, Size, Rate, Ctx) ->
    ceiling_row(Size, Rate, Ctx);
row(default, Size, Rate, Ctx) ->
    local_row([], Size, Rate, Ctx);
row(default_untuned, Size, Rate, #{local_node := Node} = Ctx) ->
    ewpcap_bench_dist:untuned(Node, fun() -> local_row([], Size, Rate, Ctx) end);
row(remote_untuned, Size, Rate, #{client := Cli} = Ctx) ->
    Buf = client_call(Cli, {dist_buffer, false}, 30000),
    try
        (remote_row([], Size, Rate, Ctx))#{dist_buffer => Buf}
    after
        client_call(Cli, {dist_buffer, default}, 30000)
    end;
row(batch64, Size, Rate, Ctx) ->
    local_row([{batch, 64}], Size, Rate, Ctx);
row(snap1600, Size, Rate, Ctx) ->
    %% not in the default set: default options but a 1600-byte snaplen
    local_row([{snaplen, 1600}], Size, Rate, Ctx);
row(remote, Size, Rate, Ctx) ->
    remote_row([], Size, Rate, Ctx);
row(remote_batch64, Size, Rate, Ctx) ->
    remote_row([{batch, 64}], Size, Rate, Ctx);
row(remote_tls, Size, Rate, #{tls := #{client := Cli, pid := Pid, node := N}} = Ctx) ->
    remote_row([], Size, Rate, Ctx#{client := Cli, remote_pid := Pid, remote_node := N});
row(remote_tls_batch64, Size, Rate, #{tls := #{client := Cli, pid := Pid, node := N}} = Ctx) ->
    remote_row([{batch, 64}], Size, Rate, Ctx#{client := Cli, remote_pid := Pid, remote_node := N}).

%% Packets per row: BENCH_COUNT, but at most BENCH_ROW_SECS of sending
%% at a paced rate (every row kind gets the same count at a given rate).
row_count(0, #{count := Count}) -> Count;
row_count(Rate, #{count := Count, row_secs := Secs}) -> min(Count, Rate * Secs).

%% The ceiling: pcapcount in the capture namespace.
ceiling_row(Size, Rate, Ctx) ->
    #{cap_ns := NS, pcapcount := Exe, dev := Dev} = Ctx,
    Count = row_count(Rate, Ctx),
    %% ewpcapd's defaults: 16 MiB buffer, block mode with a 1 ms timeout
    Port = ns_port(Ctx, NS, Exe, ["-i", binary_to_list(Dev), "-f", ?FILTER, "-t", "1",
                                  "-c", integer_to_list(Count), "-w", "700", "-T", "120"]),
    {ok, _} = wait_line(Port, "ready", 10000),
    Gen = pktgen(Size, Rate, Count, Ctx),
    {ok, Line} = wait_line(Port, "received=", 60000),
    wait_exit(Port, 5000),
    R = kv(Line),
    #{sent := Sent} = Gen,
    Recv = maps:get(received, R),
    #{sent => Sent,
      offered_pps => maps:get(pps, Gen),
      received => Recv,
      delivered_pps => maps:get(pps, R),
      pcap_recv => maps:get(ps_recv, R),
      pcap_drop => maps:get(ps_drop, R),
      pcap_ifdrop => maps:get(ps_ifdrop, R),
      daemon_drops => 0,
      drops => maps:get(ps_drop, R) + maps:get(ps_ifdrop, R),
      lost => max(0, Sent - maps:get(ps_recv, R)),
      cpu_daemon_s => maps:get(cpu_s, R),
      cpu_beam_s => 0.0}.

%% ewpcap, owner in this node, ewpcapd on the same host (--netns).
local_row(Extra, Size, Rate, Ctx) ->
    #{local_node := Node, local_pid := DPid, beam_pid := BPid, dev := Dev} = Ctx,
    Opts = Extra ++ [{filter, ?FILTER}],
    Counter = start_counter(fun() -> ewpcap:open(Node, Dev, Opts) end, count),
    {ok, S} = counter_handle(Counter),
    C0 = {cpu(DPid, Ctx), cpu(BPid, Ctx)},
    N0 = ewpcap_bench_cmp:cpu_ns(DPid, BPid, Ctx),
    Gen = pktgen(Size, Rate, row_count(Rate, Ctx), Ctx),
    Done = wait_done(Counter, maps:get(sent, Gen), 700, 60000),
    C1 = {cpu(DPid, Ctx), cpu(BPid, Ctx)},
    N1 = ewpcap_bench_cmp:cpu_ns(DPid, BPid, Ctx),
    Fin = finish_handle(Node, S),
    stop_counter(Counter),
    maps:merge(ewpcap_result(Gen, Done, Fin, C0, C1), ewpcap_bench_cmp:cpu_ns_used(N0, N1)).

%% ewpcap, owner on the client node (its own namespace), ewpcapd inside the
%% capture namespace.
remote_row(Extra, Size, Rate, Ctx) ->
    #{client := Cli, remote_pid := DPid, remote_node := DNode, dev := Dev} = Ctx,
    #{pid := BPid} = Cli,
    Opts = Extra ++ [{filter, ?FILTER}],
    ok = client_call(Cli, {open, DNode, Dev, Opts}, 15000),
    C0 = {cpu(DPid, Ctx), cpu(BPid, Ctx)},
    N0 = ewpcap_bench_cmp:cpu_ns(DPid, BPid, Ctx),
    Gen = pktgen(Size, Rate, row_count(Rate, Ctx), Ctx),
    Done = maps:from_list(client_call(Cli, {wait, maps:get(sent, Gen), 700, 60000}, 70000)),
    C1 = {cpu(DPid, Ctx), cpu(BPid, Ctx)},
    N1 = ewpcap_bench_cmp:cpu_ns(DPid, BPid, Ctx),
    Fin = maps:from_list(client_call(Cli, finish, 15000)),
    maps:merge(ewpcap_result(Gen, Done, Fin, C0, C1), ewpcap_bench_cmp:cpu_ns_used(N0, N1)).

ewpcap_result(Gen, Done, Fin, {D0, B0}, {D1, B1}) ->
    #{sent := Sent} = Gen,
    #{recv := PRecv, drop := PDrop, ifdrop := PIfDrop, daemon_drops := DDrops} = Fin,
    #{sent => Sent,
      offered_pps => maps:get(pps, Gen),
      received => maps:get(received, Done),
      delivered_pps => rate(Done),
      pcap_recv => PRecv,
      pcap_drop => PDrop,
      pcap_ifdrop => PIfDrop,
      daemon_drops => DDrops,
      daemon_packets => maps:get(daemon_packets, Fin),
      drops => PDrop + PIfDrop + DDrops,
      lost => max(0, Sent - PRecv),
      cpu_daemon_s => D1 - D0,
      cpu_beam_s => B1 - B0}.

%% Erlang to Erlang: the peer sends, a counter here receives. `idle':
%% nothing else runs. `loaded': pktgen floods the captured veth with the
%% same frames at the same time, unpaced, with nothing capturing them, so
%% the baseline shares the machine with the same generator and kernel
%% work as every capture row (on a 2 vCPU machine that is most of one CPU).
baseline_row(Load, Size, Ctx) ->
    #{peer_node := PNode, count := Count, beam_pid := BPid} = Ctx,
    Counter = start_counter(fun() -> none end, count),
    {ok, none} = counter_handle(Counter),
    PPid = list_to_integer(erpc:call(PNode, os, getpid, [])),
    Gen = case Load of
              idle -> none;
              loaded -> start_load(Size, Ctx)
          end,
    C0 = {cpu(PPid, Ctx), cpu(BPid, Ctx)},
    {Sent, Ns} = erpc:call(PNode, ?MODULE, baseline_send, [Counter, Size, Count], 120000),
    Done = wait_done(Counter, Sent, 700, 60000),
    C1 = {cpu(PPid, Ctx), cpu(BPid, Ctx)},
    LoadPps = stop_load(Gen),
    stop_counter(Counter),
    Recv = maps:get(received, Done),
    #{sent => Sent,
      offered_pps => round(Sent * 1.0e9 / max(1, Ns)),
      received => Recv,
      delivered_pps => rate(Done),
      drops => 0,
      lost => Sent - Recv,
      load_pps => LoadPps,
      cpu_daemon_s => element(1, C1) - element(1, C0),   % the sending beam
      cpu_beam_s => element(2, C1) - element(2, C0)}.

%% The background flood of a loaded baseline: pktgen unpaced until told to
%% stop (at most 60 s); returns the rate it reached.
start_load(Size, Ctx) ->
    Port = pktgen_start(Size, 0, 100000000, Ctx),
    timer:sleep(300),
    Port.

stop_load(none) ->
    null;
stop_load(Port) ->
    {os_pid, Pid} = erlang:port_info(Port, os_pid),
    {ok, _} = run_cmd("kill", ["-TERM", integer_to_list(Pid)]),
    maps:get(pps, pktgen_wait(Port, 0, 0)).

%% Runs on the peer node.
baseline_send(To, Size, Count) ->
    Packet = binary:copy(<<0>>, Size),
    Ref = make_ref(),
    T0 = erlang:monotonic_time(nanosecond),
    send_loop(To, Ref, Size, Packet, Count),
    {Count, erlang:monotonic_time(nanosecond) - T0}.

send_loop(_, _, _, _, 0) ->
    ok;
send_loop(To, Ref, Size, Packet, N) ->
    To ! {ewpcap, Ref, 1, os:timestamp(), Size, Packet},
    send_loop(To, Ref, Size, Packet, N - 1).

%%% -------------------------------------------------------------------
%%% Latency: immediate mode ({timeout, immediate}), 1k pps, owner in this node
%%% -------------------------------------------------------------------

latency(Ctx) ->
    #{local_node := Node, dev := Dev, lat_count := N} = Ctx,
    Counter = start_counter(fun() -> ewpcap:open(Node, Dev, [{filter, ?FILTER},
                                                             {timeout, immediate}]) end,
                            latency),
    {ok, S} = counter_handle(Counter),
    Offset = erlang:system_time(nanosecond) - os:system_time(nanosecond),
    Gen = pktgen(64, 1000, N, Ctx),
    Done = wait_done(Counter, maps:get(sent, Gen), 700, 30000),
    Lat = counter_latencies(Counter),
    Fin = finish_handle(Node, S),
    stop_counter(Counter),
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
    ok = client_call(Cli, {open, Dev, [{filter, ?FILTER}]}, 15000),
    RssOpen = rss_kib(DPid),
    Sampler = spawn_link(fun() -> sampler(DPid, []) end),
    GenPort = pktgen_start(Size, Rate, Count, Ctx),
    timer:sleep(StopAfter),
    Sampler ! {mark, self()},
    receive {Sampler, marked} -> ok end,
    RssStop = rss_kib(DPid),
    signal(CPid, "STOP"),
    timer:sleep(StopFor),
    Sampler ! {mark, self()},
    receive {Sampler, marked} -> ok end,
    signal(CPid, "CONT"),
    Gen = pktgen_wait(GenPort, Count, Rate),
    Done = maps:from_list(client_call(Cli, {wait, maps:get(sent, Gen), 700, 60000}, 70000)),
    Fin = maps:from_list(client_call(Cli, finish, 15000)),
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
      rss_after_kib => rss_kib(DPid),
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
        sampler(Pid, Phase, [{Phase, rss_kib(Pid)} | Acc])
    end.

signal(Pid, Sig) ->
    {ok, _} = run_cmd("kill", ["-" ++ Sig, integer_to_list(Pid)]),
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
                         [fmt_int(A), fmt_int(B), A / B, float(CA), float(CB), CA / CB]));
tls_target(Size, _, _) ->
    target(io_lib:format("{batch, 64} over TLS, ~b B, unpaced: >= 0.9x the packets of "
                         "remote_batch64 at <= 1.5x its CPU per packet", [Size]),
           false, "row missing").

ratio_target(Name, #{delivered_pps := A}, #{delivered_pps := B}, What) when B > 0 ->
    target(iolist_to_binary(Name), A >= 0.9 * B,
           io_lib:format("~s vs ~s ~s pps: ~.2fx", [fmt_int(A), What, fmt_int(B), A / B]));
ratio_target(Name, _, _, _) ->
    target(iolist_to_binary(Name), false, "row missing").

%% Against the baseline that ran next to the same generator; the ratio to
%% the idle baseline (no generator) is printed beside it.
baseline_target(Size, #{delivered_pps := A} = Row, #{delivered_pps := B} = Base, Idle) when B > 0 ->
    IdleStr = case Idle of
                  #{delivered_pps := I} when I > 0 ->
                      io_lib:format("; idle baseline ~s pps: ~.2fx", [fmt_int(I), A / I]);
                  _ ->
                      ""
              end,
    target(io_lib:format("1 packet/message, ~b B, unpaced: delivered >= 0.9x Erlang baseline", [Size]),
           A >= 0.9 * B,
           io_lib:format("~s pps (~s offered) vs baseline ~s pps (generator beside it at ~s pps): ~.2fx~s",
                         [fmt_int(A), fmt_int(maps:get(offered_pps, Row)), fmt_int(B),
                          fmt_int(maps:get(load_pps, Base)), A / B, IdleStr]));
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
                                         [rate_str(Rate), fmt_int(Off), D, fmt_int(BOff)]));
                _ ->
                    target(Name, false, "row missing")
            end
    end.

target(Name, Pass, Detail) ->
    #{name => iolist_to_binary(Name), pass => Pass, detail => iolist_to_binary(Detail)}.

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

%%% -------------------------------------------------------------------
%%% Packet generator, processes, /proc
%%% -------------------------------------------------------------------

pktgen(Size, Rate, Count, Ctx) ->
    pktgen_wait(pktgen_start(Size, Rate, Count, Ctx), Count, Rate).

pktgen_start(Size, Rate, Count, Ctx) ->
    #{gen_ns := NS, pktgen := Exe, dst := Dst} = Ctx,
    Secs = case Rate of
               0 -> 60;
               _ -> min(120, Count div Rate + 10)
           end,
    Args = ["-d", Dst, "-p", "9000", "-s", integer_to_list(Size),
            "-n", integer_to_list(Count), "-r", integer_to_list(Rate),
            "-T", integer_to_list(Secs)]
        ++ case Ctx of
               #{gen_dev := GDev, dst_mac := Mac} when is_list(GDev), is_list(Mac) ->
                   ["-i", GDev, "-m", Mac];
               #{} ->
                   []
           end,
    case Ctx of
        #{gen_cpu := "none"} -> ns_port(Ctx, NS, Exe, Args);
        #{gen_cpu := Cpu, taskset := TS} when is_list(TS) -> ns_port(Ctx, NS, TS, ["-c", Cpu, Exe | Args]);
        #{} -> ns_port(Ctx, NS, Exe, Args)
    end.

pktgen_wait(Port, _Count, _Rate) ->
    {ok, Line} = wait_line(Port, "sent=", 130000),
    wait_exit(Port, 5000),
    kv(Line).

ns_port(Ctx, NS, Exe, Args) ->
    open_port({spawn_executable, maps:get(ip, Ctx)},
              [{args, ["netns", "exec", NS, Exe | Args]}, {line, 65536},
               {cd, maps:get(out, Ctx)},
               exit_status, use_stdio, binary, stderr_to_stdout]).

wait_line(Port, Prefix, Timeout) ->
    P = list_to_binary(Prefix),
    Sz = byte_size(P),
    receive
        {Port, {data, {eol, <<P:Sz/binary, _/binary>> = Line}}} ->
            {ok, Line};
        {Port, {data, {_, Line}}} ->
            say("    | ~ts", [Line]),
            wait_line(Port, Prefix, Timeout);
        {Port, {exit_status, St}} ->
            erlang:error({exited, Prefix, St})
    after Timeout ->
        stop_port(Port),
        erlang:error({timeout, Prefix})
    end.

wait_exit(Port, Timeout) ->
    receive
        {Port, {exit_status, _}} -> ok;
        {Port, {data, {_, Line}}} -> say("    | ~ts", [Line]), wait_exit(Port, Timeout)
    after Timeout ->
        stop_port(Port)
    end.

stop_port(Port) ->
    case erlang:port_info(Port, os_pid) of
        {os_pid, Pid} -> _ = run_cmd("kill", [integer_to_list(Pid)]);
        undefined -> ok
    end,
    catch port_close(Port),
    ok.

%% "k=v k=v" with integer or float values
kv(Line) ->
    maps:from_list(
      [begin
           [K, V] = string:split(F, "="),
           {binary_to_atom(K), num(V)}
       end || F <- string:lexemes(Line, " "), F =/= <<>>]).

num(B) ->
    try binary_to_integer(B)
    catch error:badarg ->
        try binary_to_float(B)
        catch error:badarg -> B
        end
    end.

rate(#{received := N, first := F, last := L}) when N > 1, is_integer(F), L > F ->
    round((N - 1) * 1.0e9 / (L - F));
rate(_) ->
    0.

%% utime + stime of a process, in seconds
cpu(Pid, #{clk_tck := Tck}) ->
    case file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/stat") of
        {ok, B} ->
            [_, After] = string:split(B, ") ", trailing),
            Fs = string:lexemes(After, " "),
            (binary_to_integer(lists:nth(12, Fs)) + binary_to_integer(lists:nth(13, Fs))) / Tck;
        _ ->
            0.0
    end.

rss_kib(Pid) ->
    case file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/status") of
        {ok, B} ->
            case re:run(B, "VmRSS:\\s+(\\d+) kB", [{capture, all_but_first, binary}]) of
                {match, [K]} -> binary_to_integer(K);
                nomatch -> 0
            end;
        _ ->
            0
    end.

clk_tck() ->
    case run_cmd("getconf", ["CLK_TCK"]) of
        {ok, S} -> list_to_integer(string:trim(S));
        _ -> 100
    end.

run_cmd(Cmd, Args) ->
    case os:find_executable(Cmd) of
        false ->
            {error, enoent};
        Exe ->
            Port = open_port({spawn_executable, Exe},
                             [{args, Args}, exit_status, stderr_to_stdout, binary]),
            collect(Port, [])
    end.

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc]);
        {Port, {exit_status, 0}} -> {ok, binary_to_list(iolist_to_binary(lists:reverse(Acc)))};
        {Port, {exit_status, S}} -> {error, {S, iolist_to_binary(lists:reverse(Acc))}}
    after 15000 ->
        catch port_close(Port),
        {error, timeout}
    end.

%%% -------------------------------------------------------------------
%%% Daemons, the client node, the peer
%%% -------------------------------------------------------------------

%% ewpcapd on this host, capturing inside the capture namespace (--netns),
%% reached over the host's loopback.
start_local_daemon(Ctx) ->
    start_local_daemon(maps:get(ewpcapd, Ctx), "ewp_bench_d_", Ctx).

start_local_daemon(Exe, Prefix, Ctx) ->
    #{cap_ns := NS, cookie := Cookie} = Ctx,
    Name = Prefix ++ os:getpid(),
    Port = open_port({spawn_executable, Exe},
                     [{args, ["-sname", Name, "--stdin", "--netns", NS]},
                      {env, [{"EWPCAPD_COOKIE", Cookie}]},
                      {line, 1024}, exit_status, use_stdio, binary]),
    {ok, <<"ready ", N/binary>>} = wait_line(Port, "ready ", 15000),
    Node = binary_to_atom(N),
    pong = net_adm:ping(Node),
    {os_pid, Pid} = erlang:port_info(Port, os_pid),
    say("bench: same-host ~s ~s (os pid ~b, --netns ~s)", [Exe, Node, Pid, NS]),
    {Port, Node, Pid}.

%% ewpcapd inside the capture namespace, reachable only from the client
%% namespace over the cx0/cx1 veth pair.
start_remote_daemon(Ctx) ->
    start_remote_daemon(maps:get(ewpcapd, Ctx), "ewpcap", Ctx).

start_remote_daemon(Exe, Name, Ctx) ->
    #{cap_ns := NS, cookie := Cookie, cap_addr := Addr} = Ctx,
    Port = ns_port(Ctx, NS, Exe, ["-name", Name ++ "@" ++ Addr, "-cookie", Cookie, "--stdin"]),
    {ok, _} = wait_line(Port, "ready ", 15000),
    {os_pid, Pid} = erlang:port_info(Port, os_pid),
    %% ip netns exec execs the command: the port's process is ewpcapd
    {ok, Comm} = file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/comm"),
    true = lists:member(Comm, [<<"ewpcapd\n">>, iolist_to_binary([lists:sublist(filename:basename(Exe), 15), $\n])]),
    say("bench: remote ~s ~s@~s in ~s (os pid ~b)", [Exe, Name, Addr, NS, Pid]),
    {Port, Pid}.

remote_node(#{cap_addr := Addr}, Name) ->
    list_to_atom(Name ++ "@" ++ Addr).

%% BENCH_EWPCAPD_BEFORE: the old binary, same-host and remote, beside the
%% current ones. Returns the ports and the context keys that point a row
%% at them (undefined when the variable is unset).
%% With the TLS rows, a TLS daemon of the old binary too, reached by the
%% same TLS client node.
start_before_daemons(#{ewpcapd_before := undefined}, _Tls) ->
    {[], undefined};
start_before_daemons(#{ewpcapd_before := Exe} = Ctx, Tls) ->
    {LPort, LNode, LPid} = start_local_daemon(Exe, "ewp_bench_dbefore_", Ctx),
    {RPort, RPid} = start_remote_daemon(Exe, "ewpcap_before", Ctx),
    B = #{local_node => LNode, local_pid => LPid, remote_pid => RPid,
          remote_node => remote_node(Ctx, "ewpcap_before")},
    case Tls of
        undefined ->
            {[RPort, LPort], B};
        #{optfile := Optfile} ->
            {TPort, TPid, TNode} = start_tls_daemon(Exe, "ewpcap_tls_before", Optfile, Ctx),
            {[TPort, RPort, LPort], B#{tls => Tls#{pid := TPid, node := TNode}}}
    end.

%% The client node: an Erlang node in the client namespace, driven over its
%% standard input (this node cannot reach that namespace).
start_client(Ctx) ->
    #{cli_ns := NS, cookie := Cookie, cli_addr := Addr, cap_addr := DAddr,
      ebin := Ebin, bench_ebin := BEbin} = Ctx,
    Erl = os:find_executable("erl"),
    Port = ns_port(Ctx, NS, Erl, ["-noshell", "-name", "ewp_bench_cli@" ++ Addr,
                                  "-setcookie", Cookie, "+C", "multi_time_warp",
                                  "-pa", Ebin, "-pa", BEbin,
                                  "-ewpcap", "node", "'ewpcap@" ++ DAddr ++ "'",
                                  "-run", "ewpcap_bench", "client"]),
    {ok, <<"hello ", P/binary>>} = wait_line(Port, "hello ", 30000),
    Pid = binary_to_integer(P),
    say("bench: client node ewp_bench_cli@~s in ~s (os pid ~b)", [Addr, NS, Pid]),
    #{port => Port, pid => Pid}.

client_call(#{port := Port}, Term, Timeout) ->
    true = port_command(Port, io_lib:format("~w.~n", [Term])),
    case Term of
        quit ->
            wait_exit(Port, Timeout);
        _ ->
            {ok, <<"reply ", R/binary>>} = wait_line(Port, "reply ", Timeout),
            {ok, Toks, _} = erl_scan:string(binary_to_list(R) ++ "."),
            {ok, Reply} = erl_parse:parse_term(Toks),
            case Reply of
                {failed, E} -> erlang:error({client, E});
                _ -> Reply
            end
    end.

%% The TLS rows (remote_tls, remote_tls_batch64): certificates made with
%% openssl in bench/out/tls, a second remote ewpcapd with --tls-* and a
%% second client node with -proto_dist inet_tls; undefined when those
%% modes are not asked for.
start_tls(#{modes := Modes} = Ctx) ->
    case [M || M <- Modes, M =:= remote_tls orelse M =:= remote_tls_batch64] of
        [] -> undefined;
        _ -> start_tls_nodes(Ctx)
    end.

start_tls_nodes(Ctx) ->
    #{out := Out, ewpcapd := Exe, cookie := Cookie, cap_addr := Addr,
      cli_ns := CNS, cli_addr := CAddr, ebin := Ebin, bench_ebin := BEbin} = Ctx,
    Dir = filename:join(Out, "tls"),
    ok = filelib:ensure_path(Dir),
    F = fun(N, E) -> filename:join(Dir, N ++ E) end,
    Ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    {ok, _} = run_ok("openssl", ["req", "-x509" | Ec] ++ ["-keyout", F("ca", ".key"),
                     "-out", F("ca", ".pem"), "-days", "2", "-subj", "/CN=ewpcap-bench-ca"]),
    San = "subjectAltName=IP:" ++ Addr ++ ",IP:" ++ CAddr ++ ",DNS:" ++ Addr ++ ",DNS:" ++ CAddr,
    {ok, _} = run_ok("openssl", ["req" | Ec] ++ ["-keyout", F("node", ".key"), "-out",
                     F("node", ".csr"), "-subj", "/CN=node", "-addext", San]),
    {ok, _} = run_ok("openssl", ["x509", "-req", "-in", F("node", ".csr"), "-CA", F("ca", ".pem"),
                     "-CAkey", F("ca", ".key"), "-set_serial", "1", "-days", "2",
                     "-copy_extensions", "copy", "-out", F("node", ".pem")]),
    Opts = [{certfile, F("node", ".pem")}, {keyfile, F("node", ".key")},
            {cacertfile, F("ca", ".pem")}, {verify, verify_peer}],
    Optfile = F("optfile", ".conf"),
    ok = file:write_file(Optfile, io_lib:format("~tp.~n", [[{server, [{fail_if_no_peer_cert, true} | Opts]},
                                                            {client, Opts ++ tls_client_opts()}]])),
    {DPort, DPid, DNode} = start_tls_daemon(Exe, "ewpcap_tls", Optfile, Ctx),
    %% BENCH_TLS_ERL: another erl for the TLS client node (an OTP 27 root's)
    Erl = env("BENCH_TLS_ERL", os:find_executable("erl")),
    CPort = ns_port(Ctx, CNS, Erl, ["-noshell", "-name", "ewp_bench_clitls@" ++ CAddr,
                                    "-setcookie", Cookie, "+C", "multi_time_warp",
                                    "-proto_dist", "inet_tls", "-ssl_dist_optfile", Optfile,
                                    "-pa", Ebin, "-pa", BEbin,
                                    "-ewpcap", "node", "'ewpcap_tls@" ++ Addr ++ "'",
                                    "-run", "ewpcap_bench", "client"]),
    {ok, <<"hello ", P/binary>>} = wait_line(CPort, "hello ", 30000),
    say("bench: TLS ewpcapd ewpcap_tls@~s (os pid ~b), TLS client node (os pid ~s)",
        [Addr, DPid, P]),
    #{daemon_port => DPort, pid => DPid, node => DNode, optfile => Optfile,
      client => #{port => CPort, pid => binary_to_integer(P)}}.

%% BENCH_TLS_CLIENT_OPTS: more ssl options of the TLS client node, an
%% Erlang list, e.g. "[{versions, ['tlsv1.2']}]"
tls_client_opts() ->
    {ok, Toks, _} = erl_scan:string(env("BENCH_TLS_CLIENT_OPTS", "[]") ++ "."),
    {ok, L} = erl_parse:parse_term(Toks),
    true = is_list(L),
    L.

%% A TLS ewpcapd (Exe) named Name@ the capture address: {Port, OsPid, Node}
start_tls_daemon(Exe, Name, Optfile, Ctx) ->
    #{cap_ns := NS, cookie := Cookie, cap_addr := Addr} = Ctx,
    Port = ns_port(Ctx, NS, Exe, ["-name", Name ++ "@" ++ Addr, "-cookie", Cookie, "--stdin",
                                  "--tls-optfile", Optfile]),
    {ok, _} = wait_line(Port, "ready ", 30000),
    {os_pid, Pid} = erlang:port_info(Port, os_pid),
    {Port, Pid, list_to_atom(Name ++ "@" ++ Addr)}.

stop_tls(undefined) ->
    ok;
stop_tls(#{daemon_port := DPort, client := Cli}) ->
    catch client_call(Cli, quit, 2000),
    stop_port(DPort).

run_ok(Cmd, Args) ->
    case run_cmd(Cmd, Args) of
        {ok, _} = Ok -> Ok;
        Other -> erlang:error({Cmd, Args, Other})
    end.

start_peer(Ctx) ->
    #{cookie := Cookie, bench_ebin := BEbin} = Ctx,
    peer:start(#{name => "ewp_bench_tx_" ++ os:getpid(),
                 args => ["-setcookie", Cookie, "-pa", BEbin]}).

%%% ===================================================================
%%% Counters (owners of captures, receivers of the baseline)
%%% ===================================================================

start_counter(OpenFun, Kind) ->
    Parent = self(),
    Pid = spawn_link(fun() ->
                             Res = OpenFun(),
                             Parent ! {self(), opened, Res},
                             case Kind of
                                 count -> count_loop(0, undefined, undefined);
                                 latency -> lat_loop(0, undefined, undefined, [])
                             end
                     end),
    Pid.

counter_handle(Pid) ->
    receive
        {Pid, opened, {ok, S}} -> {ok, S};
        {Pid, opened, none} -> {ok, none};
        {Pid, opened, Other} -> erlang:error({open, Other})
    after 15000 ->
        erlang:error(open_timeout)
    end.

%% Every message is taken in order (no selective receive over a long
%% mailbox): a request is answered once the packets before it are counted.
count_loop(N, F, L) ->
    receive
        {ewpcap, _, _, _, _, _} ->
            T = erlang:monotonic_time(nanosecond),
            count_loop(N + 1, first(F, T), T);
        {ewpcap_batch, _, _, Ps} ->
            T = erlang:monotonic_time(nanosecond),
            count_loop(N + length(Ps), first(F, T), T);
        {get, From} ->
            From ! {self(), count, N, F, L},
            count_loop(N, F, L);
        stop ->
            ok;
        _ ->
            count_loop(N, F, L)
    end.

lat_loop(N, F, L, Lat) ->
    receive
        {ewpcap, _, _, _, _, <<_:42/binary, _Seq:64, Ts:64, _/binary>>} ->
            %% the OS's CLOCK_REALTIME, pktgen's clock: erlang:system_time/1
            %% differs from it by the offset latency/1 records
            %% (clock_offset_ns), which was never subtracted
            Now = os:system_time(nanosecond),
            T = erlang:monotonic_time(nanosecond),
            lat_loop(N + 1, first(F, T), T, [Now - Ts | Lat]);
        {get, From} ->
            From ! {self(), count, N, F, L},
            lat_loop(N, F, L, Lat);
        {latencies, From} ->
            From ! {self(), latencies, Lat},
            lat_loop(N, F, L, Lat);
        stop ->
            ok;
        _ ->
            lat_loop(N, F, L, Lat)
    end.

first(undefined, T) -> T;
first(F, _) -> F.

%% Waits until Sent packets arrived, or none for IdleMs, or MaxMs passed.
wait_done(Counter, Sent, IdleMs, MaxMs) ->
    Deadline = erlang:monotonic_time(millisecond) + MaxMs,
    wait_done(Counter, Sent, IdleMs, Deadline, -1, erlang:monotonic_time(millisecond)).

wait_done(Counter, Sent, IdleMs, Deadline, Prev, Since) ->
    Counter ! {get, self()},
    {N, F, L} = receive {Counter, count, N0, F0, L0} -> {N0, F0, L0}
                after 30000 -> erlang:error(counter_timeout)
                end,
    Now = erlang:monotonic_time(millisecond),
    Since1 = case N of Prev -> Since; _ -> Now end,
    if
        N >= Sent; Now - Since1 >= IdleMs; Now >= Deadline ->
            #{received => N, first => F, last => L};
        true ->
            timer:sleep(50),
            wait_done(Counter, Sent, IdleMs, Deadline, N, Since1)
    end.

counter_latencies(Counter) ->
    Counter ! {latencies, self()},
    receive {Counter, latencies, Lat} -> Lat after 30000 -> [] end.

stop_counter(Counter) ->
    unlink(Counter),
    Counter ! stop,
    ok.

%% pcap stats and ewpcapd's counters of a handle, then close it.
finish_handle(Node, #ewpcap_resource{ref = Ref} = S) ->
    {ok, #ewpcap_stat{recv = Recv, drop = Drop, ifdrop = IfDrop}} = ewpcap:stats(S),
    {ok, Info} = ewpcap:info(Node),
    [H] = [H || H <- proplists:get_value(handles, Info), proplists:get_value(ref, H) =:= Ref],
    ok = ewpcap:close(S),
    #{recv => Recv, drop => Drop, ifdrop => IfDrop,
      daemon_drops => proplists:get_value(drops, H),
      daemon_packets => proplists:get_value(packets, H)}.

%%% ===================================================================
%%% The client node (runs in the client namespace)
%%% ===================================================================

%% Reads one term per line from standard input, answers "reply Term".
client() ->
    _ = application:load(ewpcap),
    {ok, Daemon} = application:get_env(ewpcap, node),
    connect(Daemon, 100),
    io:format("hello ~s~n", [os:getpid()]),
    client_loop(Daemon, undefined).

connect(Daemon, 0) ->
    io:format("cannot reach ~p~n", [Daemon]),
    erlang:halt(1);
connect(Daemon, Tries) ->
    case net_adm:ping(Daemon) of
        pong -> ok;
        pang -> timer:sleep(100), connect(Daemon, Tries - 1)
    end.

client_loop(Daemon, State) ->
    case io:get_line("") of
        eof ->
            erlang:halt(0);
        Line ->
            {ok, Toks, _} = erl_scan:string(Line),
            {ok, Cmd} = erl_parse:parse_term(Toks),
            {Reply, State1} =
                try
                    client_cmd(Cmd, Daemon, State)
                catch
                    C:R -> {{failed, lists:flatten(io_lib:format("~p:~p", [C, R]))}, State}
                end,
            io:format("reply ~w~n", [Reply]),
            client_loop(Daemon, State1)
    end.

client_cmd({open, Dev, Opts}, Daemon, undefined) ->
    client_cmd({open, Daemon, Dev, Opts}, Daemon, undefined);
client_cmd({open, Node, Dev, Opts}, _, undefined) ->
    Counter = start_counter(fun() -> ewpcap:open(Node, Dev, Opts) end, count),
    {ok, S} = counter_handle(Counter),
    {ok, {Counter, S, Node}};
client_cmd({wait, Sent, IdleMs, MaxMs}, _, {Counter, _, _} = State) ->
    {maps:to_list(wait_done(Counter, Sent, IdleMs, MaxMs)), State};
client_cmd(finish, _, {Counter, S, Node}) ->
    Fin = finish_handle(Node, S),
    stop_counter(Counter),
    {maps:to_list(Fin), undefined};
client_cmd({dist_buffer, Value}, Daemon, undefined) ->
    {ewpcap_bench_dist:set(Daemon, Value), undefined};
client_cmd(quit, _, _) ->
    erlang:halt(0).
