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
%%% <li>`default_norelay': `default' with `{relay, false}': ewpcapd sends
%%%     each packet to the owner itself (the relay's before/after);</li>
%%% <li>`default_untuned', `remote_untuned': `default' and `remote' with
%%%     `{relay, false}' on a
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
%%%
%%% This module is the driver and the rows (modes); the rest, one job each:
%%% ewpcap_bench_gen (the packet generator), ewpcap_bench_proc (processes
%%% in the namespaces, CPU and RSS from /proc), ewpcap_bench_nodes (the
%%% daemons, the client and peer nodes, the counters, the client node's
%%% side), ewpcap_bench_checks (latency, RSS while the client is stopped,
%%% the targets), ewpcap_bench_report (ratios, tables, results files),
%%% ewpcap_bench_cmp, ewpcap_bench_rank and ewpcap_bench_dist.
%%% @end
-module(ewpcap_bench).

-include("ewpcap_bench.hrl").

-export([baseline_send/3, client/0, env/2, main/0]).

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
    ewpcap_bench_report:say("bench: ~s, ~b packets per row (at most ~b s of a paced rate), rates ~w (0 = unpaced), sizes ~w B",
        [maps:get(machine, Cfg), maps:get(count, Cfg), maps:get(row_secs, Cfg),
         maps:get(rates, Cfg), maps:get(sizes, Cfg)]),
    ewpcap_bench_report:say("bench: pktgen pinned to CPU ~s (BENCH_GEN_CPU), sending ~s",
        [maps:get(gen_cpu, Cfg),
         case Cfg of
             #{gen_dev := GDev, dst_mac := Mac} when is_list(GDev), is_list(Mac) ->
                 io_lib:format("Ethernet frames through a packet socket on ~s to ~s", [GDev, Mac]);
             #{} ->
                 "through a UDP socket"
         end]),
    Idle = cpu_idle_pct(2000),
    ewpcap_bench_report:say("bench: load average at start: ~s; CPU idle over 2 s before the run: ~b%",
        [maps:get(loadavg, Cfg), Idle]),
    Idle >= 90 orelse
        ewpcap_bench_report:say("bench: WARNING: other processes are using the CPU; the numbers will be noisy", []),
    {LPort, LNode, LPid} = ewpcap_bench_nodes:start_local_daemon(Cfg),
    {RPort, RPid} = ewpcap_bench_nodes:start_remote_daemon(Cfg),
    Cli = ewpcap_bench_nodes:start_client(Cfg),
    Tls = ewpcap_bench_nodes:start_tls(Cfg),
    {BPorts, Before} = ewpcap_bench_nodes:start_before_daemons(Cfg, Tls),
    {ok, Peer, PNode} = ewpcap_bench_nodes:start_peer(Cfg),
    Ctx = Cfg#{local_node => LNode, local_pid => LPid, remote_pid => RPid, tls => Tls,
               remote_node => ewpcap_bench_nodes:remote_node(Cfg, "ewpcap"), before_ctx => Before,
               client => Cli, peer_node => PNode, beam_pid => list_to_integer(os:getpid())},
    AllRows = ewpcap_bench_report:add_ratios(lists:append([size_rows(Size, Ctx) || Size <- maps:get(sizes, Cfg)])),
    %% the old daemon's rows only go to the before/after table and the files
    Rows1 = [R || R <- AllRows, maps:get(daemon, R, current) =/= before],
    Latency = safe(fun() -> ewpcap_bench_checks:latency(Ctx) end),
    Rss = safe(fun() -> ewpcap_bench_checks:rss_test(Ctx) end),
    Targets = ewpcap_bench_checks:targets(Rows1, Latency, Rss),
    Cfg1 = Cfg#{idle_before => Idle, loadavg_end => loadavg()},
    ewpcap_bench_report:print_table(Rows1, Cfg1),
    ewpcap_bench_rank:print(Rows1),
    ewpcap_bench_dist:print(Rows1),
    AtomCache = ewpcap_bench_dist:atom_cache(),
    ewpcap_bench_rank:print_atom_cache(AtomCache),
    ewpcap_bench_report:print_extra(Latency, Rss),
    ewpcap_bench_report:print_targets(Targets),
    Before =:= undefined orelse ewpcap_bench_cmp:print(AllRows, Cfg1),
    ewpcap_bench_report:write_results(Cfg1#{atom_cache => AtomCache}, AllRows, Latency, Rss, Targets),
    ewpcap_bench_nodes:client_call(Cli, quit, 2000),
    ewpcap_bench_nodes:stop_tls(Tls),
    catch peer:stop(Peer),
    lists:foreach(fun ewpcap_bench_proc:stop_port/1, BPorts),
    ewpcap_bench_proc:stop_port(RPort),
    ewpcap_bench_proc:stop_port(LPort),
    case lists:all(fun(#{pass := P}) -> P end, Targets) of
        true -> 0;
        false -> 3
    end.

config() ->
    Root = env("BENCH_ROOT", element(2, file:get_cwd())),
    Out = env("BENCH_OUT", filename:join([Root, "bench", "out"])),
    {ok, Uname} = ewpcap_bench_proc:run_cmd("uname", ["-r"]),
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
      modes => [list_to_atom(M) || M <- string:lexemes(env("BENCH_MODES", "ceiling,default,default_norelay,default_untuned,batch64,remote,remote_untuned,remote_batch64,remote_tls,remote_tls_batch64"), ",")],
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
      clk_tck => ewpcap_bench_proc:clk_tck(),
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
                  ewpcap_bench_report:say("  ~p ~b B ~s: FAILED ~p:~p ~p", [Mode, Size, ewpcap_bench_report:rate_str(Rate), C, R, St]),
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
    ewpcap_bench_report:say("  ~ts ~4b B ~-8s offered ~8s delivered ~8s drops ~s",
        [string:pad(Label, 14), Size, ewpcap_bench_report:rate_str(Rate), ewpcap_bench_report:fmt_int(maps:get(offered_pps, R1, undefined)),
         ewpcap_bench_report:fmt_int(maps:get(delivered_pps, R1, undefined)), ewpcap_bench_report:fmt_drops(R1)]),
    R2.

safe(Fun) ->
    try
        Fun()
    catch
        C:R:St ->
            ewpcap_bench_report:say("bench: FAILED ~p:~p ~p", [C, R, St]),
            #{error => iolist_to_binary(io_lib:format("~p:~p", [C, R]))}
    end.

row(ceiling, Size, Rate, Ctx) ->
    ceiling_row(Size, Rate, Ctx);
row(default, Size, Rate, Ctx) ->
    local_row([], Size, Rate, Ctx);
row(default_untuned, Size, Rate, #{local_node := Node} = Ctx) ->
    ewpcap_bench_dist:untuned(Node, fun() -> local_row([{relay, false}], Size, Rate, Ctx) end);
row(default_norelay, Size, Rate, Ctx) ->
    local_row([{relay, false}], Size, Rate, Ctx);
row(remote_untuned, Size, Rate, #{client := Cli} = Ctx) ->
    Buf = ewpcap_bench_nodes:client_call(Cli, {dist_buffer, false}, 30000),
    try
        (remote_row([{relay, false}], Size, Rate, Ctx))#{dist_buffer => Buf}
    after
        ewpcap_bench_nodes:client_call(Cli, {dist_buffer, default}, 30000)
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
    Port = ewpcap_bench_proc:ns_port(Ctx, NS, Exe, ["-i", binary_to_list(Dev), "-f", ?FILTER, "-t", "1",
                                  "-c", integer_to_list(Count), "-w", "700", "-T", "120"]),
    {ok, _} = ewpcap_bench_proc:wait_line(Port, "ready", 10000),
    Gen = ewpcap_bench_gen:pktgen(Size, Rate, Count, Ctx),
    {ok, Line} = ewpcap_bench_proc:wait_line(Port, "received=", 60000),
    ewpcap_bench_proc:wait_exit(Port, 5000),
    R = ewpcap_bench_proc:kv(Line),
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
    Counter = ewpcap_bench_nodes:start_counter(fun() -> ewpcap:open(Node, Dev, Opts) end, count),
    {ok, S} = ewpcap_bench_nodes:counter_handle(Counter),
    C0 = {ewpcap_bench_proc:cpu(DPid, Ctx), ewpcap_bench_proc:cpu(BPid, Ctx)},
    N0 = ewpcap_bench_cmp:cpu_ns(DPid, BPid, Ctx),
    Gen = ewpcap_bench_gen:pktgen(Size, Rate, row_count(Rate, Ctx), Ctx),
    Done = ewpcap_bench_nodes:wait_done(Counter, maps:get(sent, Gen), 700, 60000),
    C1 = {ewpcap_bench_proc:cpu(DPid, Ctx), ewpcap_bench_proc:cpu(BPid, Ctx)},
    N1 = ewpcap_bench_cmp:cpu_ns(DPid, BPid, Ctx),
    Fin = ewpcap_bench_nodes:finish_handle(Node, S),
    ewpcap_bench_nodes:stop_counter(Counter),
    maps:merge(ewpcap_result(Gen, Done, Fin, C0, C1), ewpcap_bench_cmp:cpu_ns_used(N0, N1)).

%% ewpcap, owner on the client node (its own namespace), ewpcapd inside the
%% capture namespace.
remote_row(Extra, Size, Rate, Ctx) ->
    #{client := Cli, remote_pid := DPid, remote_node := DNode, dev := Dev} = Ctx,
    #{pid := BPid} = Cli,
    Opts = Extra ++ [{filter, ?FILTER}],
    ok = ewpcap_bench_nodes:client_call(Cli, {open, DNode, Dev, Opts}, 15000),
    C0 = {ewpcap_bench_proc:cpu(DPid, Ctx), ewpcap_bench_proc:cpu(BPid, Ctx)},
    N0 = ewpcap_bench_cmp:cpu_ns(DPid, BPid, Ctx),
    Gen = ewpcap_bench_gen:pktgen(Size, Rate, row_count(Rate, Ctx), Ctx),
    Done = maps:from_list(ewpcap_bench_nodes:client_call(Cli, {wait, maps:get(sent, Gen), 700, 60000}, 70000)),
    C1 = {ewpcap_bench_proc:cpu(DPid, Ctx), ewpcap_bench_proc:cpu(BPid, Ctx)},
    N1 = ewpcap_bench_cmp:cpu_ns(DPid, BPid, Ctx),
    Fin = maps:from_list(ewpcap_bench_nodes:client_call(Cli, finish, 15000)),
    maps:merge(ewpcap_result(Gen, Done, Fin, C0, C1), ewpcap_bench_cmp:cpu_ns_used(N0, N1)).

ewpcap_result(Gen, Done, Fin, {D0, B0}, {D1, B1}) ->
    #{sent := Sent} = Gen,
    #{recv := PRecv, drop := PDrop, ifdrop := PIfDrop, daemon_drops := DDrops} = Fin,
    #{sent => Sent,
      offered_pps => maps:get(pps, Gen),
      received => maps:get(received, Done),
      delivered_pps => ewpcap_bench_proc:rate(Done),
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
    Counter = ewpcap_bench_nodes:start_counter(fun() -> none end, count),
    {ok, none} = ewpcap_bench_nodes:counter_handle(Counter),
    PPid = list_to_integer(erpc:call(PNode, os, getpid, [])),
    Gen = case Load of
              idle -> none;
              loaded -> start_load(Size, Ctx)
          end,
    C0 = {ewpcap_bench_proc:cpu(PPid, Ctx), ewpcap_bench_proc:cpu(BPid, Ctx)},
    {Sent, Ns} = erpc:call(PNode, ?MODULE, baseline_send, [Counter, Size, Count], 120000),
    Done = ewpcap_bench_nodes:wait_done(Counter, Sent, 700, 60000),
    C1 = {ewpcap_bench_proc:cpu(PPid, Ctx), ewpcap_bench_proc:cpu(BPid, Ctx)},
    LoadPps = stop_load(Gen),
    ewpcap_bench_nodes:stop_counter(Counter),
    Recv = maps:get(received, Done),
    #{sent => Sent,
      offered_pps => round(Sent * 1.0e9 / max(1, Ns)),
      received => Recv,
      delivered_pps => ewpcap_bench_proc:rate(Done),
      drops => 0,
      lost => Sent - Recv,
      load_pps => LoadPps,
      cpu_daemon_s => element(1, C1) - element(1, C0),   % the sending beam
      cpu_beam_s => element(2, C1) - element(2, C0)}.

%% The background flood of a loaded baseline: pktgen unpaced until told to
%% stop (at most 60 s); returns the rate it reached.
start_load(Size, Ctx) ->
    Port = ewpcap_bench_gen:pktgen_start(Size, 0, 100000000, Ctx),
    timer:sleep(300),
    Port.

stop_load(none) ->
    null;
stop_load(Port) ->
    {os_pid, Pid} = erlang:port_info(Port, os_pid),
    {ok, _} = ewpcap_bench_proc:run_cmd("kill", ["-TERM", integer_to_list(Pid)]),
    maps:get(pps, ewpcap_bench_gen:pktgen_wait(Port, 0, 0)).

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


%% The client node's entry (-run ewpcap_bench client)
client() ->
    ewpcap_bench_nodes:client().
