%%% @doc ewpcap_dump with several interfaces (`-i NODE:DEV -i NODE2:DEV2
%%% ...'): one capture on each, through each node's ewpcapd, with the same
%%% options and filter, merged into one stream in timestamp order through
%%% ewpcap_merge's bounded window (`--merge-window MS'), printed with each
%%% line after its interface (`node:dev ') or written to one pcapng file
%%% with an interface per capture.
%%%
%%% An interface whose capture fails (its host's daemon killed:
%%% `{ewpcap_error, Ref, nodedown}'; its device gone) ends alone: the
%%% others go on. The loss is said at once on standard error, and in the
%%% pcapng file as an `opt_comment' on an Interface Statistics Block of
%%% that interface (its counts until then) and on the next packet written
%%% (which tshark shows: `-T fields -e frame.comment'). The run then exits
%%% with status 1, as when all are lost. Counts at the end per interface,
%%% as tcpdump's lines after the interface's name.
%%%
%%% Times are compared as the hosts stamp them: the hosts' clocks must
%%% agree (NTP) for the order to mean anything.
%%% @end
-module(ewpcap_dump_multi).

-include("ewpcap.hrl").
-include("ewpcap_dump.hrl").

-export([capture/1]).

-define(BATCH, 256).

%% One interface of the run.
-record(iface, {
    name :: binary(),                     % NODE:DEV, as printed and in the file
    node :: node(),
    socket :: ewpcap:socket(),
    dlt :: non_neg_integer() | undefined,
    id :: non_neg_integer(),              % its index, and its pcapng interface id
    captured = 0 :: non_neg_integer(),    % packets written or printed
    lost :: undefined | term()            % why its capture ended early
}).

-record(st, {
    ifs :: #{reference() => #iface{}},
    byid :: #{non_neg_integer() => reference()},
    merge :: ewpcap_merge:merge(),
    out :: {text, ewpcap_dump_out:out()} | {pcapng, ewpcap_pcapng:writer()},
    left :: non_neg_integer() | infinity,  % -c
    comment = [] :: [binary()],            % for the next packet written
    eof :: undefined | signal | all_lost | closed
}).

%% @doc Runs the capture of `O#opts.ifaces' and returns the exit status
%% (throws as ewpcap_dump does on a bad filter or an unreachable node).
-spec capture(#opts{}) -> 0 | 1.
capture(#opts{ifaces = Ifaces} = O) ->
    Nodes = daemons(O),
    Opts = ewpcap_dump_args:live_opts(O, ?BATCH),
    Opened = [open(maps:get(N, Nodes), Dev, Opts, O#opts.filter, Id)
              || {Id, {N, Dev}} <- lists:enumerate(0, Ifaces)],
    % the output first: its interface descriptions ask each daemon, and a
    % daemon that is slow to answer (stopped, far away) must not hold the
    % others' packets in the mailbox past "listening on", where the merge
    % would take them all as arriving at once when it answers
    Out = output(O, Opened),
    ewpcap_dump:install_signals(),
    _ = [err_line("listening on ~ts, link-type ~ts, snapshot length ~b bytes",
                              [Name, ewpcap_dump_dlt:desc(Dlt), O#opts.snaplen])
         || #iface{name = Name, dlt = Dlt} <- Opened],
    St0 = #st{ifs = maps:from_list([{ref(I), I} || I <- Opened]),
              byid = maps:from_list([{I#iface.id, ref(I)} || I <- Opened]),
              merge = ewpcap_merge:new([I#iface.id || I <- Opened], O#opts.merge_window),
              out = Out, left = O#opts.count},
    St = try
             loop(St0)
         catch
             throw:{output_closed, St1} -> St1#st{eof = closed}
         end,
    finish(O, St).

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

%% Each node reached (its cookie set, pinged: an unreachable one ends the
%% run before any capture, naming it), or the embedded daemon.
daemons(#opts{ifaces = Ifaces} = O) ->
    maps:from_list([{N, ewpcap_dump:daemon(O#opts{node = N})}
                    || N <- lists:usort([N || {N, _} <- Ifaces])]).

ref(#iface{socket = #ewpcap_resource{ref = Ref}}) -> Ref.

open(Node, Dev0, Base, Filter, Id) ->
    Dev = unicode:characters_to_binary(Dev0),
    Label = [atom_to_list(Node), $:, Dev],
    S = case ewpcap:open(Node, Dev, Base ++ [{filter, Filter} || Filter =/= <<>>]) of
            {ok, S0} ->
                S0;
            {error, enomem} ->
                ewpcap_dump_args:usage("filter too long", []);
            {error, Reason} when Filter =/= <<>> ->
                case ewpcap:open(Node, Dev, Base) of
                    {ok, S1} ->
                        ok = ewpcap:close(S1),
                        ewpcap_dump_args:usage("bad filter expression '~ts': ~ts",
                                               [Filter, reason(Reason)]);
                    {error, _} ->
                        fatal("~ts: ~ts", [Label, reason(Reason)])
                end;
            {error, Reason} ->
                fatal("~ts: ~ts", [Label, reason(Reason)])
        end,
    {_, Dlt} = ewpcap_dump:handle_info(Node, S#ewpcap_resource.ref, Dev),
    #iface{name = iolist_to_binary(Label), node = Node, socket = S, dlt = Dlt, id = Id}.

output(#opts{write = undefined} = O, Opened) ->
    {text, ewpcap_dump_out:open(O, {hd([I#iface.dlt || I <- Opened]), O#opts.snaplen}, #{}, async)};
output(#opts{write = Name, unbuffered = U} = O, Opened) ->
    W0 = case ewpcap_pcapng:open_write(Name, #{unbuffered => U, userappl => ?PROG " (ewpcap)"}) of
             {ok, W} -> W;
             {error, Reason} -> fatal("~ts", [ewpcap_pcapng:format_error(Reason)])
         end,
    {pcapng, lists:foldl(
               fun(#iface{node = Node, name = Name1, dlt = Dlt, id = Id}, W) ->
                       [_, Dev] = string:split(Name1, ":", trailing),
                       Source = #{node => Node, device => binary_to_list(Dev), filter => O#opts.filter,
                                  description => ewpcap_dump:dev_description(Node, binary_to_list(Dev))},
                       If = ewpcap_dump_out:interface(Source, Dlt, O#opts.snaplen, O#opts.precision),
                       case ewpcap_pcapng:add_interface(W, If) of
                           {ok, Id, W1} -> W1;
                           {error, R, _} -> fatal("~ts", [ewpcap_pcapng:format_error(R)])
                       end
               end, W0, Opened)}.

loop(#st{left = 0} = St) ->
    St;
loop(#st{eof = Eof} = St) when Eof =/= undefined ->
    St;
loop(#st{ifs = Ifs, merge = M} = St) ->
    receive
        {ewpcap_batch, Ref, Dlt, Batch} when is_map_key(Ref, Ifs) ->
            loop(push(Ref, Dlt, Batch, St));
        {ewpcap, Ref, Dlt, Time, Len, Packet} when is_map_key(Ref, Ifs) ->
            loop(push(Ref, Dlt, [{Time, Len, Packet}], St));
        {ewpcap_error, Ref, Reason} when is_map_key(Ref, Ifs) ->
            loop(lost(Ref, Reason, St));
        {ewpcap_eof, Ref} when is_map_key(Ref, Ifs) ->
            loop(lost(Ref, eof, St));
        {ewpcap_dump, signal, _} ->
            St#st{eof = signal};
        {ewpcap_dump_names, IP, Name} ->
            case St#st.out of
                {text, Out} -> loop(St#st{out = {text, ewpcap_dump_out:resolved(IP, Name, Out)}});
                _ -> loop(St)
            end
    after ewpcap_merge:timeout(now_ms(), M) ->
        {Released, M1} = ewpcap_merge:advance(now_ms(), M),
        loop(emit(Released, St#st{merge = M1}))
    end.

now_ms() ->
    erlang:monotonic_time(millisecond).

push(Ref, Dlt, Batch, #st{ifs = Ifs} = St) ->
    #iface{id = Id} = I = maps:get(Ref, Ifs),
    {Released, M} = ewpcap_merge:push(Id, Batch, now_ms(), St#st.merge),
    emit(Released, St#st{ifs = Ifs#{Ref := I#iface{dlt = Dlt}}, merge = M}).

%% An interface's capture ended: said now (stderr, the file), the others
%% go on; what it held back is released. Said once (a second error of
%% the same handle is dropped).
lost(Ref, _Reason, #st{ifs = Ifs} = St) when (map_get(Ref, Ifs))#iface.lost =/= undefined ->
    St;
lost(Ref, Reason, #st{ifs = Ifs} = St) ->
    #iface{name = Name, node = Node, id = Id} = I = maps:get(Ref, Ifs),
    Why = case Reason of
              nodedown -> io_lib:format("ewpcapd ~ts is down (nodedown)", [Node]);
              eof -> "end of capture";
              _ -> reason(Reason)
          end,
    Text = iolist_to_binary(io_lib:format("~ts: capture lost at ~ts: ~ts; ~b packet~s captured",
                                          [Name, calendar:system_time_to_rfc3339(
                                                   erlang:system_time(second), [{offset, "Z"}]),
                                           Why, I#iface.captured, plural(I#iface.captured)])),
    {Released, M} = ewpcap_merge:remove(Id, now_ms(), St#st.merge),
    St1 = emit(Released, St#st{merge = M}),
    err(
      "~ts~ts", [Text, case ewpcap_merge:live(M) of
                           [] -> "";
                           _ -> "; the other interfaces go on"
                       end]),
    St2 = case St1#st.out of
              {pcapng, W} ->
                  case ewpcap_pcapng:write_stats(W, Id, #{delivered => I#iface.captured,
                                                          comment => Text}) of
                      {ok, W1} -> St1#st{out = {pcapng, W1}, comment = [Text | St1#st.comment]};
                      {error, R, _} -> fatal("~ts", [ewpcap_pcapng:format_error(R)])
                  end;
              _ ->
                  St1
          end,
    _ = catch ewpcap:close(I#iface.socket),
    Ifs2 = (St2#st.ifs)#{Ref := I#iface{lost = Why}},
    St2#st{ifs = Ifs2,
           eof = case ewpcap_merge:live(M) of
                     [] -> all_lost;
                     _ -> St2#st.eof
                 end}.

%% The packets released, in order, each on its interface, up to -c.
emit([], St) ->
    St;
emit(Released0, #st{left = Left} = St) ->
    Released = case Left of
                   infinity -> Released0;
                   _ -> lists:sublist(Released0, Left)
               end,
    St1 = lists:foldl(fun emit_run/2, St, runs(Released)),
    St1#st{left = case Left of
                      infinity -> infinity;
                      _ -> Left - length(Released)
                  end}.

%% Consecutive packets of one interface, written with one call.
runs([]) -> [];
runs([{Id, P} | T]) -> runs(T, Id, [P], []).

runs([{Id, P} | T], Id, Run, Acc) -> runs(T, Id, [P | Run], Acc);
runs([{Id2, P} | T], Id, Run, Acc) -> runs(T, Id2, [P], [{Id, lists:reverse(Run)} | Acc]);
runs([], Id, Run, Acc) -> lists:reverse([{Id, lists:reverse(Run)} | Acc]).

emit_run({Id, Packets}, #st{ifs = Ifs, byid = ById} = St) ->
    Ref = maps:get(Id, ById),
    #iface{name = Name, dlt = Dlt} = I = maps:get(Ref, Ifs),
    St1 = St#st{ifs = Ifs#{Ref := I#iface{captured = I#iface.captured + length(Packets)}}},
    case St1#st.out of
        {text, Out} ->
            Out1 = try
                       ewpcap_dump_out:emit(Dlt, Packets, Out, <<Name/binary, " ">>)
                   catch
                       throw:{output_closed, O1} -> throw({output_closed, St1#st{out = {text, O1}}})
                   end,
            St1#st{out = {text, Out1}};
        {pcapng, W} ->
            Ps = case St1#st.comment of
                     [] -> Packets;
                     C -> [{T, L, B, lists:join("\n", lists:reverse(C))}
                           || {T, L, B} <- [hd(Packets)]] ++ tl(Packets)
                 end,
            case ewpcap_pcapng:write(W, Id, Ps) of
                {ok, W1} -> St1#st{out = {pcapng, W1}, comment = []};
                {error, {_, closed}, W1} -> throw({output_closed, St1#st{out = {pcapng, W1}}});
                {error, R, _} -> fatal("~ts", [ewpcap_pcapng:format_error(R)])
            end
    end.

%% The held packets written (not after -c), the counts per interface,
%% the captures closed.
finish(_O, St0) ->
    St = case St0#st.eof of
             closed ->
                 St0;
             _ ->
                 {Rest, M} = ewpcap_merge:flush(St0#st.merge),
                 try emit(Rest, St0#st{merge = M})
                 catch throw:{output_closed, S1} -> S1
                 end
         end,
    Ifs = lists:keysort(#iface.id, maps:values(St#st.ifs)),
    Stats = [{I, case I#iface.lost of
                     undefined -> ewpcap:stats(I#iface.socket);
                     _ -> {error, lost}
                 end} || I <- Ifs],
    Drops = [ewpcap_dump:daemon_drops(I#iface.node, ref(I)) || I <- Ifs, I#iface.lost =:= undefined],
    _ = [catch ewpcap:close(I#iface.socket) || I <- Ifs, I#iface.lost =:= undefined],
    case St#st.out of
        {text, _} ->
            ok;
        {pcapng, W} ->
            case ewpcap_pcapng:close_write(
                   W, [{Id, #{recv => R, drop => D + F, delivered => C}}
                       || {#iface{id = Id, captured = C},
                           {ok, #ewpcap_stat{recv = R, drop = D, ifdrop = F}}} <- Stats]) of
                ok -> ok;
                {error, {_, closed}} -> ok;
                {error, Reason} -> fatal("~ts", [ewpcap_pcapng:format_error(Reason)])
            end
    end,
    Total = lists:sum([I#iface.captured || I <- Ifs]),
    Lines = [[[Name, " ", L, $\n] || L <- stat_lines(I, S)] || {#iface{name = Name} = I, S} <- Stats],
    err_raw([Lines,
                         io_lib:format("~b packet~s captured~n", [Total, plural(Total)]),
                         case ewpcap_merge:late(St#st.merge) of
                             0 -> [];
                             N -> io_lib:format("~b packet~s out of time order (later than the"
                                                " merge window)~n", [N, plural(N)])
                         end,
                         case lists:sum(Drops) of
                             0 -> [];
                             N -> io_lib:format("~b packet~s dropped by ewpcapd~n", [N, plural(N)])
                         end]),
    case [I || I <- Ifs, I#iface.lost =/= undefined] of
        [] -> 0;
        _ -> 1
    end.

stat_lines(#iface{captured = C}, {ok, #ewpcap_stat{recv = R, drop = D, ifdrop = F}}) ->
    [io_lib:format("~b packet~s captured", [C, plural(C)]),
     io_lib:format("~b packet~s received by filter", [R, plural(R)]),
     io_lib:format("~b packet~s dropped by kernel", [D, plural(D)])]
        ++ [io_lib:format("~b packet~s dropped by interface", [F, plural(F)]) || F =/= 0];
stat_lines(#iface{captured = C, lost = Why}, _) ->
    [io_lib:format("~b packet~s captured", [C, plural(C)])]
        ++ [["lost: ", Why] || Why =/= undefined].

err(Fmt, Args) ->
    err_raw([?PROG ": ", io_lib:format(Fmt, Args), $\n]).

err_line(Fmt, Args) ->
    err_raw([io_lib:format(Fmt, Args), $\n]).

err_raw(Chars) ->
    io:put_chars(standard_error, Chars).

plural(1) -> "";
plural(_) -> "s".

reason(R) when is_list(R); is_binary(R) -> R;
reason(R) -> io_lib:format("~tp", [R]).

-spec fatal(io:format(), [term()]) -> no_return().
fatal(Fmt, Args) ->
    throw({fatal, io_lib:format(Fmt, Args)}).
