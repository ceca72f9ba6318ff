%%% @doc The headline of `make bench': every row of a frame size ranked by
%%% CPU per delivered packet (ewpcapd's, or pcapcount's, or the sending
%%% node's, plus the receiving node's), beside delivered pps and drops.
%%% The generator offers less than the capture's ceiling on this machine,
%%% so delivered pps near the offered rate says nothing about headroom;
%%% CPU per packet does. Also prints the atom cache estimate
%%% (ewpcap_bench_dist:atom_cache/0).
%%% bench/readme_table.sh makes the same table from results.json for the
%%% README.
%%% @end
-module(ewpcap_bench_rank).

-export([print/1, print_atom_cache/1]).

print(Rows) ->
    Ok = [R || #{cpu_us_per_pkt := C, delivered_pps := D} = R <- Rows, C > 0, D > 0,
               maps:get(daemon, R, current) =/= before],
    io:format("Ranked by CPU per delivered packet (us; daemon = ewpcapd, pcapcount or the "
              "sending node; node = the receiving node):~n~n"),
    io:format("| size | rank | row | rate | CPU us/pkt | daemon | node | delivered pps | "
              "drops |~n|---|---:|---|---|---:|---:|---:|---:|---:|~n"),
    [begin
         Sorted = lists:sort(fun(A, B) -> key(A) =< key(B) end,
                             [R || #{size := S} = R <- Ok, S =:= Size]),
         [io:format("| ~b | ~b | ~s | ~s | ~.2f | ~.2f | ~.2f | ~s | ~s |~n",
                    [Size, I, maps:get(mode, R), ewpcap_bench_report:rate_str(maps:get(rate, R)),
                     float(maps:get(cpu_us_per_pkt, R)),
                     float(maps:get(cpu_daemon_us_per_pkt, R)),
                     float(maps:get(cpu_beam_us_per_pkt, R)),
                     ewpcap_bench_report:fmt_int(maps:get(delivered_pps, R)),
                     ewpcap_bench_report:fmt_int(maps:get(drops, R))])
          || {I, R} <- lists:zip(lists:seq(1, length(Sorted)), Sorted)]
     end || Size <- lists:usort([S || #{size := S} <- Ok])],
    io:format("~n"),
    ok.

key(#{cpu_us_per_pkt := C, mode := M, rate := R}) -> {C, M, R}.

print_atom_cache(Results) ->
    io:format("Atom cache (DFLAG_DIST_HDR_ATOM_CACHE, which ewpcapd uses with nodes that offer it): looking up the four "
              "atoms of a packet message ('', two node names, ewpcap) costs ~b ns more than "
              "four small integers in binary_to_term/1 (fastest of 7 runs); the whole message:~s.~n"
              "That is the most the cache can save per packet.~n~n",
              [round(element(2, hd(Results))),
               lists:join(",", [io_lib:format(" ~b ns at ~b B", [round(M), S])
                                || {S, _, M} <- Results])]),
    ok.
