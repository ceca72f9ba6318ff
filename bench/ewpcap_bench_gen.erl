%%% @doc make bench: the packet generator, bench/pktgen, run in the
%%% generator namespace (pinned to BENCH_GEN_CPU) for one row.
%%% @end
-module(ewpcap_bench_gen).

-include("ewpcap_bench.hrl").

-export([pktgen/4, pktgen_start/4, pktgen_wait/3]).

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
        #{gen_cpu := "none"} -> ewpcap_bench_proc:ns_port(Ctx, NS, Exe, Args);
        #{gen_cpu := Cpu, taskset := TS} when is_list(TS) -> ewpcap_bench_proc:ns_port(Ctx, NS, TS, ["-c", Cpu, Exe | Args]);
        #{} -> ewpcap_bench_proc:ns_port(Ctx, NS, Exe, Args)
    end.

pktgen_wait(Port, _Count, _Rate) ->
    {ok, Line} = ewpcap_bench_proc:wait_line(Port, "sent=", 130000),
    ewpcap_bench_proc:wait_exit(Port, 5000),
    ewpcap_bench_proc:kv(Line).
