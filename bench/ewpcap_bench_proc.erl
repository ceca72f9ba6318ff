%%% @doc make bench: processes started in the namespaces (ports, their
%%% lines, their exit), and CPU accounting from /proc (utime + stime, RSS).
%%% @end
-module(ewpcap_bench_proc).

-include("ewpcap_bench.hrl").

-export([clk_tck/0, cpu/2, kv/1, ns_port/4, rate/1, rss_kib/1, run_cmd/2, stop_port/1,
         wait_exit/2, wait_line/3]).

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
            ewpcap_bench_report:say("    | ~ts", [Line]),
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
        {Port, {data, {_, Line}}} -> ewpcap_bench_report:say("    | ~ts", [Line]), wait_exit(Port, Timeout)
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
