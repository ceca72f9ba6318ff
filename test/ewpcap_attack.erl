%%% @doc Test helper of ewpcap_attack_SUITE and ewpcap_attack_load_SUITE:
%%% their standalone daemons (`ewpcapd -(s)name ewp_attack_<n>_<pid>@Host
%%% --stdin -v Args', through ewpcap_daemon_helpers), the group's daemon
%%% and directory in the case's Config, the daemon's handles and a bounded
%%% wait.
%%% @end
-module(ewpcap_attack).

-export([start_daemon/1, start_daemon/3, daemon_lines/1, stop_daemon/1,
         node_of/1, in_dir/2, realpath/1, handles/1, has_handle/2,
         wait_until/1, wait_until_ms/2, flush/0]).

-include_lib("common_test/include/ct.hrl").

-define(DH, ewpcap_daemon_helpers).
-define(WAIT, 5000).

start_daemon(Args) ->
    start_daemon(Args, [], []).

%% Wrap: a command that runs the daemon (e.g. prlimit ...), or []
start_daemon(Args, Env, Wrap) ->
    ?DH:start(#{args => ["-v" | Args], env => Env, wrap => Wrap, prefix => "ewp_attack_"}).

daemon_lines(D) ->
    ?DH:lines(D).

stop_daemon(D) ->
    ?DH:stop(D).

node_of(Config) ->
    maps:get(node, ?config(daemon, Config)).

in_dir(Config, Name) -> filename:join(?config(dir, Config), Name).

realpath(Path) ->
    case os:cmd("realpath -e " ++ Path) of
        "/" ++ _ = R -> {ok, string:trim(R)};
        Err -> {error, Err}
    end.

handles(Node) ->
    {ok, Info} = ewpcap:info(Node),
    proplists:get_value(handles, Info).

has_handle(Node, Ref) ->
    lists:any(fun(H) -> proplists:get_value(ref, H) =:= Ref end, handles(Node)).

%% F() true within ?WAIT ms, polled every 20 ms (bounded)
wait_until(F) ->
    wait_until(F, ?WAIT div 20).

%% ... within Ms ms
wait_until_ms(F, Ms) ->
    wait_until(F, Ms div 20).

wait_until(F, 0) -> F();
wait_until(F, N) ->
    case F() of
        true -> true;
        false -> receive after 20 -> wait_until(F, N - 1) end
    end.

flush() ->
    ?DH:flush().
