%%% @doc A bounded reorder window: packets of several interfaces (several
%%% hosts), each stream in its own capture order, merged into one stream
%%% in timestamp order, as mergecap would merge their files, without
%%% holding any packet back longer than the window.
%%%
%%% Pure: no process, no clock of its own. The caller passes `Now' (any
%%% millisecond clock that does not go back, e.g.
%%% `erlang:monotonic_time(millisecond)') with each call; packet times are
%%% in the capture's unit (micro- or nanoseconds: any integer, only
%%% compared). A packet is any tuple whose first element is its time
%%% (ewpcap's `{Time, Length, Packet}').
%%%
%%% A held packet is released, with every held packet of an earlier or
%%% equal time before it:
%%% <ul>
%%% <li>as soon as it is safe: every live interface has shown a packet of
%%%     a later or equal time, so no interface can still send an earlier
%%%     one (as long as each interface's own packets come in time
%%%     order);</li>
%%% <li>or when it has waited the window (`Now' at least its arrival plus
%%%     the window), whatever the other interfaces have shown: a quiet
%%%     interface holds the stream back by the window at most.
%%%     timeout/2 says when the next one is due.</li>
%%% </ul>
%%% A packet that arrives when a packet of a later time has already been
%%% released (its place has gone by: its host's clock or its delivery was
%%% late by more than the window) is released at once, out of order, and
%%% counted (late/1). An interface removed (its host went down) no longer
%%% holds anything back. Equal times keep their arrival order.
%%% @end
-module(ewpcap_merge).

-export([new/2, push/4, advance/2, remove/3, flush/1, timeout/2]).
-export([late/1, held/1, live/1]).

-export_type([merge/0, id/0, released/0]).

-type id() :: term().
%% An interface (ewpcap_dump: its index).

-type released() :: [{id(), tuple()}].
%% Packets in the order to write them, each with its interface.

-record(merge, {
    window :: non_neg_integer(),                     % ms a packet may be held
    marks :: #{id() => integer() | none},            % live interface => latest time shown
    held :: gb_trees:tree(),                         % {Time, Seq} => {Id, Packet}
    arrivals :: queue:queue(),                       % {Arrival ms, {Time, Seq}}, oldest first
    seq = 0 :: non_neg_integer(),                    % arrival order, for equal times
    last :: integer() | none,                        % time of the last packet released
    late = 0 :: non_neg_integer()                    % released out of order
}).

-opaque merge() :: #merge{}.
%% The window and what it holds.

%%% ===================================================================
%%% API
%%% ===================================================================

%% @doc A window of `WindowMs' milliseconds over the interfaces `Ids'
%% (all live, none having shown a packet yet).
-spec new([id()], non_neg_integer()) -> merge().
new(Ids, WindowMs) when is_list(Ids), is_integer(WindowMs), WindowMs >= 0 ->
    #merge{window = WindowMs, marks = maps:from_list([{Id, none} || Id <- Ids]),
           held = gb_trees:empty(), arrivals = queue:new(), last = none};
new(Ids, WindowMs) ->
    error(badarg, [Ids, WindowMs]).

%% @doc Packets of interface `Id', arrived at `Now', in its capture order;
%% returns what is released now. A removed or unknown interface's
%% packets are held as the others (they hold nothing back).
-spec push(id(), [tuple()], integer(), merge()) -> {released(), merge()}.
push(Id, Packets, Now, M0) ->
    {Late, M} = lists:foldl(fun(P, Acc) -> hold(Id, P, Now, Acc) end, {[], M0}, Packets),
    {Out, M1} = release(Now, M),
    {lists:reverse(Late) ++ Out, M1}.

%% @doc What is due at `Now' (the window passed): call it when timeout/2
%% has gone by.
-spec advance(integer(), merge()) -> {released(), merge()}.
advance(Now, M) ->
    release(Now, M).

%% @doc Interface `Id' has gone (its host is down, its capture ended):
%% it holds nothing back any more; returns what that releases.
-spec remove(id(), integer(), merge()) -> {released(), merge()}.
remove(Id, Now, #merge{marks = Marks} = M) ->
    release(Now, M#merge{marks = maps:remove(Id, Marks)}).

%% @doc Everything held, in time order (the end of the capture).
-spec flush(merge()) -> {released(), merge()}.
flush(M) ->
    take_upto(infinity, M, []).

%% @doc Milliseconds from `Now' until the next packet is due (0: due
%% now), `infinity' when nothing is held.
-spec timeout(integer(), merge()) -> non_neg_integer() | infinity.
timeout(Now, M) ->
    case oldest(M) of
        {none, _} -> infinity;
        {{Arrival, _}, _} -> max(0, Arrival + M#merge.window - Now)
    end.

%% @doc Packets released out of order so far (late/1: see the module's
%% doc).
-spec late(merge()) -> non_neg_integer().
late(#merge{late = N}) -> N.

%% @doc Packets held now.
-spec held(merge()) -> non_neg_integer().
held(#merge{held = H}) -> gb_trees:size(H).

%% @doc The interfaces still live.
-spec live(merge()) -> [id()].
live(#merge{marks = Marks}) -> lists:sort(maps:keys(Marks)).

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

hold(Id, P, Now, {Late, #merge{last = Last} = M}) ->
    Time = element(1, P),
    M1 = mark(Id, Time, M),
    case Last =/= none andalso Time < Last of
        true ->
            {[{Id, P} | Late], M1#merge{late = M1#merge.late + 1}};
        false ->
            Key = {Time, M1#merge.seq},
            {Late, M1#merge{held = gb_trees:insert(Key, {Id, P}, M1#merge.held),
                            arrivals = queue:in({Now, Key}, M1#merge.arrivals),
                            seq = M1#merge.seq + 1}}
    end.

mark(Id, Time, #merge{marks = Marks} = M) ->
    case Marks of
        #{Id := Mark} when Mark =:= none; Mark < Time -> M#merge{marks = Marks#{Id := Time}};
        _ -> M
    end.

%% Releases up to the later of the safe time and the newest key whose
%% arrival is a window old.
release(Now, M0) ->
    {Due, M} = due(Now, M0, none),
    Safe = case maps:values(M#merge.marks) of
               [] -> infinity;
               Marks -> case lists:member(none, Marks) of
                            true -> none;
                            false -> {lists:min(Marks), infinity} % after every seq
                        end
           end,
    take_upto(later(Due, Safe), M, []).

%% The greatest key among the packets that have waited the window (those
%% already released are dropped from the arrival queue on the way).
due(Now, #merge{window = Window} = M0, Cut) ->
    case oldest(M0) of
        {{Arrival, Key}, M} when Arrival + Window =< Now ->
            due(Now, M#merge{arrivals = queue:drop(M#merge.arrivals)}, later(Cut, Key));
        {_, M} ->
            {Cut, M}
    end.

%% The oldest arrival still held, the queue rid of those released.
oldest(#merge{arrivals = Q, held = H} = M) ->
    case queue:peek(Q) of
        empty ->
            {none, M};
        {value, {_, Key} = A} ->
            case gb_trees:is_defined(Key, H) of
                true -> {A, M};
                false -> oldest(M#merge{arrivals = queue:drop(Q)})
            end
    end.

later(none, B) -> B;
later(A, none) -> A;
later(infinity, _) -> infinity;
later(_, infinity) -> infinity;
later(A, B) -> max(A, B).

take_upto(none, M, Acc) ->
    {lists:reverse(Acc), M};
take_upto(Cut, #merge{held = H} = M, Acc) ->
    case gb_trees:is_empty(H) of
        true ->
            {lists:reverse(Acc), M};
        false ->
            {{Time, _} = Key, Item, H1} = gb_trees:take_smallest(H),
            case Cut =:= infinity orelse Key =< Cut of
                true -> take_upto(Cut, M#merge{held = H1, last = Time}, [Item | Acc]);
                false -> {lists:reverse(Acc), M}
            end
    end.
