%%% @doc Top supervisor of the ewpcap application.
%%%
%%% It supervises, one_for_one with at most 5 restarts in 10 seconds,
%%% ewpcap_distbuf (the receive buffer of the connections to daemons) and
%%% the embedded daemon (ewpcap_daemon), unless the application
%%% environment variable `node' names a daemon node to use instead: then
%%% only ewpcap_distbuf.
%%% @end
-module(ewpcap_sup).

-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

%% @doc Starts the supervisor, registered as `ewpcap_sup'.
-spec start_link() -> supervisor:startlink_ret().
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @private
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    Flags = #{strategy => one_for_one, intensity => 5, period => 10},
    DistBuf = #{
        id => ewpcap_distbuf,
        start => {ewpcap_distbuf, start_link, []},
        restart => permanent,
        shutdown => 5000,
        type => worker,
        modules => [ewpcap_distbuf]
    },
    Children =
        case application:get_env(ewpcap, node) of
            {ok, Node} when is_atom(Node) ->
                [DistBuf];
            _ ->
                [
                    DistBuf,
                    #{
                        id => ewpcap_daemon,
                        start => {ewpcap_daemon, start_link, []},
                        restart => permanent,
                        shutdown => 5000,
                        type => worker,
                        modules => [ewpcap_daemon]
                    }
                ]
        end,
    {ok, {Flags, Children}}.
