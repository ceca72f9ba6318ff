%%% @doc The ewpcap application: starts ewpcap_sup.
%%%
%%% Application environment (all optional):
%%% <ul>
%%% <li>`{node, Node}': the ewpcapd node that ewpcap:open/0,1,2, dev/0,
%%%     getifaddrs/0 and info/0 use. When it is set the application starts
%%%     no daemon of its own. Default: unset, an embedded daemon is started
%%%     (see ewpcap_daemon).</li>
%%% <li>`{ewpcapd, Path}': the executable of the embedded daemon. Default:
%%%     `ewpcapd' in the application's `priv' directory.</li>
%%% <li>`{dist_buffer, Bytes | false}': the user-space receive buffer
%%%     (`buffer') and `recbuf' of the distribution connection to each
%%%     daemon; `false' leaves them as they are. Default: 1048576 (see
%%%     ewpcap_distbuf).</li>
%%% </ul>
%%% ewpcap:daemon_node/0 starts the application when it is needed.
%%% @end
-module(ewpcap_app).

-behaviour(application).

-export([start/2, stop/1]).

%% @private
-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_Type, _Args) ->
    case ewpcap_sup:start_link() of
        {ok, Pid} -> {ok, Pid};
        ignore -> {error, ignore};
        {error, _} = Error -> Error
    end.

%% @private
-spec stop(term()) -> ok.
stop(_State) ->
    ok.
