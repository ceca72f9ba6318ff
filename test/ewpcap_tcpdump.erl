%%% @doc Test helper of ewpcap_testbed: tcpdump inside a namespace, writing
%%% a pcap file whose frames are read back when it exits.
%%% ewpcap_testbed's tcpdump_start/4, tcpdump_result/2 and parse_pcap/1 are
%%% these. Every wait is bounded.
%%% @end
-module(ewpcap_tcpdump).

-export([start/4, result/2, parse_pcap/1]).

%% @doc Starts `tcpdump -i If -c Count -w File Filter' inside the
%% namespace NS (bounded by `timeout 20') and returns once it listens.
-spec start(string(), string(), pos_integer(), string()) -> {ok, map()} | {error, term()}.
start(NS, If, Count, Filter) ->
    File = filename:join("/tmp", "ewp_ct_rt_" ++
                             integer_to_list(erlang:unique_integer([positive])) ++ ".pcap"),
    Args = ["netns", "exec", NS, "timeout", "20", "tcpdump", "-n", "-U", "-Z", "root",
            "-i", If, "-c", integer_to_list(Count), "-w", File, Filter],
    Port = open_port({spawn_executable, os:find_executable("ip")},
                     [{args, Args}, {line, 1024}, exit_status, binary, stderr_to_stdout, hide]),
    T = #{port => Port, file => File},
    Deadline = erlang:monotonic_time(millisecond) + 10000,
    case tcpdump_wait(Port, Deadline, []) of
        {listening, Lines} -> {ok, T#{lines => Lines}};
        Other -> catch port_close(Port), {error, Other}
    end.

tcpdump_wait(Port, Deadline, Lines) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, {_, L}}} ->
            case binary:match(L, <<"listening on">>) of
                nomatch -> tcpdump_wait(Port, Deadline, [L | Lines]);
                _ -> {listening, [L | Lines]}
            end;
        {Port, {exit_status, S}} ->
            {exit, S, lists:reverse(Lines)}
    after Left ->
        {timeout, lists:reverse(Lines)}
    end.

%% @doc Waits for tcpdump to exit and returns the frames it wrote
%% `{ok, [Frame]}' or `{error, Why}'. The file is deleted.
result(#{port := Port, file := File}, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    R = tcpdump_exit(Port, Deadline, []),
    Result =
        case R of
            {0, _} ->
                case file:read_file(File) of
                    {ok, Bin} -> {ok, parse_pcap(Bin)};
                    Error -> Error
                end;
            {Other, Lines} ->
                {error, {tcpdump, Other, Lines}}
        end,
    _ = file:delete(File),
    Result.

tcpdump_exit(Port, Deadline, Lines) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    receive
        {Port, {data, {_, L}}} -> tcpdump_exit(Port, Deadline, [L | Lines]);
        {Port, {exit_status, S}} -> {S, lists:reverse(Lines)}
    after Left ->
        case erlang:port_info(Port, os_pid) of
            {os_pid, P} -> ewpcap_testbed:os_cmd("kill", ["-9", integer_to_list(P)]);
            _ -> ok
        end,
        catch port_close(Port),
        {timeout, lists:reverse(Lines)}
    end.

%% @doc The frames of a pcap file (microsecond or nanosecond, either byte
%% order).
parse_pcap(<<16#A1B2C3D4:32/little, _:20/binary, Rest/binary>>) -> records(little, Rest);
parse_pcap(<<16#A1B23C4D:32/little, _:20/binary, Rest/binary>>) -> records(little, Rest);
parse_pcap(<<16#A1B2C3D4:32/big, _:20/binary, Rest/binary>>) -> records(big, Rest);
parse_pcap(<<16#A1B23C4D:32/big, _:20/binary, Rest/binary>>) -> records(big, Rest).

records(_, <<>>) ->
    [];
records(little, <<_:64, Incl:32/little, _Orig:32/little, Frame:Incl/binary, Rest/binary>>) ->
    [Frame | records(little, Rest)];
records(big, <<_:64, Incl:32/big, _Orig:32/big, Frame:Incl/binary, Rest/binary>>) ->
    [Frame | records(big, Rest)].
