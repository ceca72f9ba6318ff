%%% A user module written against the original ewpcap NIF library
%%% (v1.1.5), unchanged: its header, its records, its exported types,
%%% dirty_scheduler_enabled/0 and every form of option it accepted.
%%% ewpcap_compat_SUITE compiles it against our include/ and ebin/ and
%%% runs it.
-module(orig_user).

-include_lib("ewpcap/include/ewpcap.hrl").

-export([option_forms/0, capture/2, open_close/1, scheduler/0]).

-record(seen, {dlt, len, packet}).

%% Every option form of the original's open/2.
-spec option_forms() -> [[term()]].
option_forms() ->
    [[],
     [{to_ms, infinity}],
     [{to_ms, immediate}],
     [{to_ms, 100}],
     [{timeout, immediate}],
     [{timeout, infinity}],
     [{timeout, 100}],
     [{timeout, 100}, {to_ms, 5}],
     [{to_ms, 5}, {timeout, 100}],
     [{immediate, false}],
     [{immediate, true}],
     [{timeout, infinity}, {immediate, true}],
     [{snaplen, 1500}, {promisc, false}, {buffer, 0}, {monitor, false},
      {time_unit, microsecond}, {optimize, true}, {netmask, {255, 255, 255, 0}},
      {limit, 8192}],
     [{time_unit, timestamp}, {netmask, 16#FFFFFF00}]].

%% Opens lo with Options and a filter for UDP to Port, sets the filter
%% again with the same option list (as the original allowed), waits for
%% one packet as an #ewpcap{} record, reads the counters as an
%% #ewpcap_stat{} and closes.
-spec capture([term()], inet:port_number()) ->
    {ok, #seen{}, ewpcap:ewpcap_stat()} | {error, term()}.
capture(Options, Port) ->
    Filter = "udp and dst port " ++ integer_to_list(Port),
    case ewpcap:open(<<"lo">>, [{filter, Filter} | Options]) of
        {ok, Socket} ->
            ok = ewpcap:filter(Socket, Filter, Options),
            Result = receive_one(Socket, Port),
            ok = ewpcap:close(Socket),
            Result;
        {error, _} = Error ->
            Error
    end.

%% The same without waiting for a packet (for the options that buffer
%% without a timeout, where one packet may never come out).
-spec open_close([term()]) -> {ok, ewpcap:ewpcap_stat()} | {error, term()}.
open_close(Options) ->
    case ewpcap:open(<<"lo">>, [{filter, "udp port 9"} | Options]) of
        {ok, Socket} ->
            ok = ewpcap:filter(Socket, "udp port 9", Options),
            {ok, #ewpcap_stat{}} = Stat = ewpcap:stats(Socket),
            ok = ewpcap:close(Socket),
            Stat;
        {error, _} = Error ->
            Error
    end.

-spec receive_one(ewpcap:ewpcap_resource(), inet:port_number()) ->
    {ok, #seen{}, ewpcap:ewpcap_stat()} | {error, term()}.
receive_one(#ewpcap_resource{ref = Ref} = Socket, Port) ->
    {ok, U} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}]),
    ok = gen_udp:send(U, {127, 0, 0, 1}, Port, <<"original">>),
    gen_udp:close(U),
    receive
        #ewpcap{ref = Ref, dlt = Dlt, length = Len, packet = Packet, time = Time}
          when is_tuple(Time); is_integer(Time) ->
            {ok, #ewpcap_stat{recv = Recv} = Stat} = ewpcap:stats(Socket),
            true = Recv >= 1,
            {ok, #seen{dlt = Dlt, len = Len, packet = Packet}, Stat};
        {ewpcap_error, Ref, Error} ->
            {error, Error}
    end.

-spec scheduler() -> boolean().
scheduler() ->
    ewpcap:dirty_scheduler_enabled().
