%%% Records shared by the ewpcap library (erl/) and its users and tests.
%%%
%%% Use them with:
%%%   -include_lib("ewpcap/include/ewpcap.hrl").

-ifndef(EWPCAP_HRL).
-define(EWPCAP_HRL, true).

%% A capture handle, as returned by ewpcap:open/0,1,2,3.
%%
%% `ref' is copied into every message about the handle
%% (`{ewpcap, Ref, ...}', `{ewpcap_error, Ref, ...}'). `res' identifies the
%% handle on its daemon: `{Node, Guard, State}', the ewpcapd node that
%% holds the pcap handle, the local guard process that ties the handle's
%% life to its owner's, and an atomics array (closed by close/1, read to
%% its end, daemon lost) shared by every copy of the socket on this node.
%% A handle opened through rpc, without this library, has `{Node, Pid}'.
-record(ewpcap_resource, {
    ref :: reference(),
    res :: {Node :: node(), Guard :: pid(), State :: atomics:atomics_ref()}
         | {Node :: node(), Pid :: pid()}
}).

%% Counters returned by ewpcap:stats/1, see pcap_stats(3PCAP).
-record(ewpcap_stat, {
    recv = 0 :: non_neg_integer(),   % packets received
    drop = 0 :: non_neg_integer(),   % dropped for lack of buffer space
    ifdrop = 0 :: non_neg_integer(), % dropped by the network interface
    capt = 0 :: non_neg_integer()    % always 0 (was Win32 only)
}).

%% A packet message, as the original library's header defined it:
%% `{ewpcap, Ref, DatalinkType, Time, Length, Packet}' is an `#ewpcap{}'
%% (see ewpcap:open/2 for the fields).
-record(ewpcap, {
    ref :: reference(),
    dlt :: integer(),
    time :: erlang:timestamp() | non_neg_integer(),
    length :: non_neg_integer(),
    packet :: binary()
}).

-endif.
