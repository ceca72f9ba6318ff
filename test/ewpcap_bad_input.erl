%%% @doc Test helper of ewpcap_bad_input_SUITE (the rows of docs/PROTOCOL.md's
%%% "Bad input") and ewpcap_bad_calls_SUITE (the other bad calls): their
%%% Common Test callbacks, raw calls to the embedded daemon and the check
%%% that it still answers, as the same OS process, after each case.
%%% @end
-module(ewpcap_bad_input).

-export([
    %% Common Test callbacks of the two suites
    init_suite/1, end_suite/1, init_case/1, end_case/1,
    %% helpers
    raw_call/2, assert_reply/2, assert_daemon_alive/1, frame/1, lo_mtu/0, deep/1,
    long_atom/0, summary/1, receive_all/1, flush/0
]).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-define(CALL_TIMEOUT, 5000).   % ms a raw call may take before it is "no reply"
-define(ETHERTYPE, 16#88B5).
-define(NOMATCH, "udp port 9 and udp port 10").

%%% ===================================================================
%%% Common Test callbacks (the suites' own call these)
%%% ===================================================================

%% The embedded daemon, and its reply to dev to compare with.
init_suite(Config) ->
    Node = ewpcap:node(),
    case ewpcap_daemon_helpers:embedded_on_lo() of
        ok ->
            {ok, Dev} = raw_call(Node, dev),
            ct:pal("embedded ewpcapd ~p, os pid ~p, dev ~p, lo mtu ~p",
                   [Node, ewpcap_daemon_helpers:os_pid(Node), Dev, lo_mtu()]),
            [{daemon, Node}, {dev_reply, {ok, Dev}} | Config];
        Skip ->
            Skip
    end.

end_suite(_Config) ->
    _ = application:stop(ewpcap),
    ok.

%% Each case gets a live handle on lo ('$ref'), the ref of a closed one
%% ('$closed') and the daemon's OS pid to compare with at the end.
init_case(Config) ->
    flush(),
    Node = ?config(daemon, Config),
    {ok, Live} = ewpcap:open(Node, <<"lo">>, [{filter, ?NOMATCH}]),
    {ok, Closed} = ewpcap:open(Node, <<"lo">>, [{filter, ?NOMATCH}]),
    ok = ewpcap:close(Closed),
    [{live, Live}, {closed_ref, Closed#ewpcap_resource.ref},
     {os_pid, ewpcap_daemon_helpers:os_pid(Node)} | Config].

end_case(Config) ->
    catch ewpcap:close(?config(live, Config)),
    flush(),
    ok.

%%% ===================================================================
%%% Helpers
%%% ===================================================================

%% gen_server:call/3; a call that gets no reply in time is {no_reply, Ms}.
raw_call(Node, Request) ->
    try
        gen_server:call({ewpcap, Node}, Request, ?CALL_TIMEOUT)
    catch
        exit:{timeout, _} -> {no_reply, ?CALL_TIMEOUT}
    end.

%% The daemon still answers dev, is the same OS process and that process
%% is alive.
assert_daemon_alive(Config) ->
    Node = ?config(daemon, Config),
    ?assertEqual(?config(dev_reply, Config), raw_call(Node, dev)),
    Pid = ?config(os_pid, Config),
    ?assertEqual(Pid, ewpcap_daemon_helpers:os_pid(Node)),
    ?assert(filelib:is_dir("/proc/" ++ integer_to_list(Pid))),
    ok.

%% An Ethernet frame of Size bytes (at least 14): zero MACs, ethertype
%% 0x88B5, zero payload.
frame(Size) when Size >= 14 ->
    <<0:48, 0:48, ?ETHERTYPE:16, 0:((Size - 14) * 8)>>.

lo_mtu() ->
    {ok, Bin} = file:read_file("/sys/class/net/lo/mtu"),
    binary_to_integer(string:trim(Bin)).

deep(0) -> [];
deep(N) -> [deep(N - 1)].

long_atom() ->
    list_to_atom(lists:duplicate(255, 16#1F600)).

summary(T) when is_binary(T), byte_size(T) > 64 -> {binary, byte_size(T)};
summary(T) -> T.

receive_all(Wait) ->
    receive
        M -> [summary(M) | receive_all(0)]
    after Wait ->
        []
    end.

flush() ->
    _ = receive_all(0),
    ok.

%% The exact reply, or for {'$prefix', {error, Prefix}} an {error, Text}
%% whose printable Text starts with Prefix.
assert_reply({'$prefix', {error, Prefix}}, Reply) ->
    case Reply of
        {error, [_ | _] = Text} ->
            ?assert(io_lib:printable_unicode_list(Text)),
            ?assertEqual(Prefix, lists:sublist(Text, length(Prefix)));
        _ ->
            ct:fail({unexpected_reply, Reply, {expected, {error, Prefix ++ "..."}}})
    end;
assert_reply(Expected, Reply) ->
    ?assertEqual(Expected, Reply).
