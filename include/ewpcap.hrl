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
%% handle on its daemon: `{Node, Guard}', the ewpcapd node that holds the
%% pcap handle and the local guard process that ties the handle's life to
%% its owner's.
-record(ewpcap_resource, {
    ref :: reference(),
    res :: {Node :: node(), Guard :: pid()}
}).

%% Counters returned by ewpcap:stats/1, see pcap_stats(3PCAP).
-record(ewpcap_stat, {
    recv = 0 :: non_neg_integer(),   % packets received
    drop = 0 :: non_neg_integer(),   % dropped for lack of buffer space
    ifdrop = 0 :: non_neg_integer(), % dropped by the network interface
    capt = 0 :: non_neg_integer()    % always 0 (was Win32 only)
}).

-endif.
