%%% @doc A minimal Erlang distribution client over gen_tcp, for tests that
%%% need a node that misbehaves on purpose (one that stops reading, for
%%% example), which a real node cannot be made to do.
%%%
%%% It is written from the ERTS User's Guide, "Distribution Protocol":
%%% <ul>
%%% <li>the port comes from epmd (`erl_epmd:port_please/2');</li>
%%% <li>handshake as the initiator, version 6 (`DFLAG_HANDSHAKE_23'),
%%%     2-byte length packets:
%%%     `send_name' `<<$N, Flags:64, Creation:32, NLen:16, Name>>',
%%%     `recv_status' `<<$s, "ok">>',
%%%     `recv_challenge' `<<$N, Flags:64, Challenge:32, Creation:32, NLen:16, Name>>',
%%%     `send_challenge_reply' `<<$r, OurChallenge:32, Digest:16/binary>>'
%%%     with `Digest = md5(Cookie ++ integer_to_list(Challenge))',
%%%     `recv_challenge_ack' `<<$a, md5(Cookie ++ integer_to_list(OurChallenge))>>';</li>
%%% <li>then frames `<<Len:32, 112, 131, Ctl/binary, 131, Msg/binary>>', a
%%%     frame of length 0 being a tick (or, with the `flags' option below
%%%     holding DFLAG_DIST_HDR_ATOM_CACHE, frames with the distribution
%%%     header). No fragments are offered, so every message is one
%%%     frame.</li>
%%% </ul>
%%%
%%% `connect/3' returns a connection owned by the caller: a reader process
%%% forwards every frame to the caller as `{rawdist, Id, Ctl, Msg}' (`Msg'
%%% is `none' for a control without message) and answers the peer's ticks,
%%% until `stop_reading/1': from then on nothing is read from the socket
%%% (and no tick is answered) until `close/1' or the caller's exit. Sends
%%% are done by the calling process, straight on the socket, so a large
%%% send never waits for the reader. The node has no processes: `pid/2'
%%% makes pids of it (NEW_PID_EXT) to use as `From' in calls.
%%%
%%% Options (a map): `name' (alive part; default a unique one), `recbuf'
%%% (the socket's receive buffer, e.g. 4096), `timeout' (ms, handshake
%%% steps; default 5000), `flags' (more distribution flags to offer;
%%% default 0). With DFLAG_DIST_HDR_ATOM_CACHE (16#2000) every frame either
%%% way has the distribution header (`<<Len:32, 131, 68, N, Flags, Refs,
%%% Ctl, Msg>>', no version bytes): the reader keeps the cache of what the
%%% peer sent, forwards `{rawdist_header, Id, Refs, Ctl, Msg}' (`Refs'
%%% `[{Index, new | old, AtomText}]', in header order) besides each
%%% `{rawdist, Id, Ctl, Msg}', and fails
%%% (`{rawdist_bad, Id, Frame}', then it stops) on a frame without one;
%%% sends carry a header whose atoms are all new entries (header_frame/3
%%% makes frames that refer to entries sent before).
%%% @end
-module(ewpcap_rawdist).

-export([connect/3, close/1, stop_reading/1, name/1, pid/2]).
-export([send_reg/4, send_ctl/3, send_raw/2, call/3, block_call/4, recv/3]).
-export([header_frame/3]).

-define(DFLAGS,
        (16#4 bor        % EXTENDED_REFERENCES
         16#10 bor       % FUN_TAGS
         16#80 bor       % NEW_FUN_TAGS
         16#100 bor      % EXTENDED_PIDS_PORTS
         16#200 bor      % EXPORT_PTR_TAG
         16#400 bor      % BIT_BINARIES
         16#800 bor      % NEW_FLOATS
         16#4000 bor     % SMALL_ATOM_TAGS
         16#10000 bor    % UTF8_ATOMS
         16#20000 bor    % MAP_TAG
         16#40000 bor    % BIG_CREATION
         16#1000000 bor  % HANDSHAKE_23
         16#2000000 bor  % UNLINK_ID
         16#4000000 bor  % MANDATORY_25_DIGEST
         (16#4 bsl 32))). % V4_NC
-define(PASS_THROUGH, 112).
-define(VERSION_MAGIC, 131).
-define(REG_SEND, 6).
-define(NEW_PID_EXT, 88).
-define(SMALL_ATOM_UTF8_EXT, 119).
-define(DFLAG_DIST_HDR_ATOM_CACHE, 16#2000).
-define(DIST_HEADER, 68).
-define(ATOM_CACHE_REF, 82).

-type conn() :: #{id := reference(), sock := gen_tcp:socket(), reader := pid(),
                  name := node(), creation := non_neg_integer(), header := boolean()}.
-export_type([conn/0]).

%% @doc Connects to Node (a node epmd knows on its host) as a hidden node
%% and completes the handshake with Cookie.
-spec connect(node(), atom() | string(), map()) -> {ok, conn()} | {error, term()}.
connect(Node, Cookie, Opts) ->
    [Alive, Host] = string:split(atom_to_list(Node), "@"),
    Tmo = maps:get(timeout, Opts, 5000),
    MyAlive = maps:get(name, Opts, "ewp_rawdist_" ++ os:getpid() ++ "_" ++ integer_to_list(erlang:unique_integer([positive]))),
    MyName = MyAlive ++ "@" ++ Host,
    Buf = [{recbuf, N} || N <- [maps:get(recbuf, Opts, none)], is_integer(N)],
    Cookie1 = if is_atom(Cookie) -> atom_to_list(Cookie); true -> Cookie end,
    Creation = 4 + rand:uniform(16#7FFFFFF0),
    try
        {ok, Ip} = inet:getaddr(Host, inet),
        {port, Port, _Version} = erl_epmd:port_please(Alive, Ip),
        {ok, S} = gen_tcp:connect(Ip, Port, [binary, {packet, 2}, {active, false},
                                              {nodelay, true} | Buf], Tmo),
        Flags = maps:get(flags, Opts, 0),
        ok = handshake(S, MyName, Cookie1, Creation, Tmo, Flags),
        ok = inet:setopts(S, [{packet, raw}]),
        Id = make_ref(),
        Header = Flags band ?DFLAG_DIST_HDR_ATOM_CACHE =/= 0,
        Reader = spawn(fun() -> put(header, Header), reader_start(Id, S) end),
        ok = gen_tcp:controlling_process(S, Reader),
        Reader ! {go, self()},
        {ok, #{id => Id, sock => S, reader => Reader, name => list_to_atom(MyName),
               creation => Creation, header => Header}}
    catch
        error:{badmatch, Error} -> {error, Error}
    end.

%% @doc Closes the socket (the reader exits).
-spec close(conn()) -> ok.
close(#{reader := R, sock := S}) ->
    R ! close,
    _ = gen_tcp:close(S),
    ok.

%% @doc From now on nothing more is read from the socket: the peer's
%% output piles up in the kernel buffers and then in the peer itself.
-spec stop_reading(conn()) -> ok.
stop_reading(#{reader := R}) ->
    MRef = erlang:monitor(process, R),
    R ! {stop_reading, self(), MRef},
    receive
        {MRef, stopped} -> erlang:demonitor(MRef, [flush]), ok;
        {'DOWN', MRef, process, R, Why} -> {error, {reader_down, Why}}
    after 5000 -> erlang:demonitor(MRef, [flush]), {error, timeout}
    end.

-spec name(conn()) -> node().
name(#{name := Name}) -> Name.

%% @doc Pid number N of the fake node (its creation included).
-spec pid(conn(), non_neg_integer()) -> pid().
pid(#{name := Name, creation := Cr}, N) ->
    B = atom_to_binary(Name, utf8),
    binary_to_term(<<131, ?NEW_PID_EXT, ?SMALL_ATOM_UTF8_EXT, (byte_size(B)), B/binary,
                     N:32, 0:32, Cr:32>>).

%% @doc REG_SEND `{6, From, '''', Name}' with Msg.
-spec send_reg(conn(), pid(), atom(), term()) -> ok | {error, term()}.
send_reg(#{sock := S} = C, From, Name, Msg) ->
    gen_tcp:send(S, frame(C, {?REG_SEND, From, '', Name}, Msg)).

%% @doc Any control tuple, with Msg (or `none': a control alone), e.g. an
%% EXIT `{3, From, To, Reason}' or a SPAWN_REQUEST.
-spec send_ctl(conn(), tuple(), term()) -> ok | {error, term()}.
send_ctl(#{sock := S, header := false}, Ctl, none) ->
    Body = [?PASS_THROUGH, term_to_binary(Ctl, [{minor_version, 2}])],
    gen_tcp:send(S, [<<(iolist_size(Body)):32>> | Body]);
send_ctl(#{sock := S} = C, Ctl, Msg) ->
    gen_tcp:send(S, frame(C, Ctl, Msg)).

%% @doc Frames made by the caller (each `<<Len:32, Body>>'), as they are.
-spec send_raw(conn(), iodata()) -> ok | {error, term()}.
send_raw(#{sock := S}, Frames) ->
    gen_tcp:send(S, Frames).

%% @doc `{'$gen_call', {From, Tag}, Request}' to the registered Name, From
%% being pid 1 of the fake node. Returns Tag (for recv/3); does not wait.
-spec call(conn(), atom(), term()) -> reference().
call(Conn, Name, Request) ->
    From = pid(Conn, 1),
    Tag = make_ref(),
    ok = send_reg(Conn, From, Name, {'$gen_call', {From, Tag}, Request}),
    Tag.

%% @doc rpc:block_call's request to `rex': `{block_call, M, F, A, GL}'.
-spec block_call(conn(), atom(), atom(), list()) -> reference().
block_call(Conn, M, F, A) ->
    call(Conn, rex, {block_call, M, F, A, pid(Conn, 2)}).

%% @doc The reply `{Tag, Reply}' to a call/3, read while reading.
-spec recv(conn(), reference(), timeout()) -> {ok, term()} | timeout.
recv(#{id := Id}, Tag, Timeout) ->
    receive
        {rawdist, Id, _Ctl, {Tag, Reply}} -> {ok, Reply}
    after Timeout ->
        timeout
    end.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

frame(#{header := true}, Ctl, Msg) ->
    {F, _} = header_frame(Ctl, Msg, #{}),
    F;
frame(_, Ctl, Msg) ->
    Body = [?PASS_THROUGH, term_to_binary(Ctl, [{minor_version, 2}]),
            term_to_binary(Msg, [{minor_version, 2}])],
    [<<(iolist_size(Body)):32>> | Body].

%% @doc A frame with the distribution header (`Msg' may be `none'): every
%% atom of Ctl and Msg is a cache reference, an old entry for an atom that
%% Cache (`#{AtomText => Index}', what the peer was sent before) has, else
%% a new one (indexes from 250 up, so that segments 0 and 1 both occur).
%% Returns the frame and the cache with the new entries.
-spec header_frame(tuple(), term(), #{binary() => 0..2047}) ->
          {binary(), #{binary() => 0..2047}}.
header_frame(Ctl, Msg, Cache) ->
    St0 = {Cache, []},
    {C, St1} = to_refs(body(Ctl), St0),
    {M, {Cache1, Refs}} = case Msg of
                              none -> {<<>>, St1};
                              _ -> to_refs(body(Msg), St1)
                          end,
    Body = iolist_to_binary([header(lists:reverse(Refs)), C, M]),
    {<<(byte_size(Body)):32, Body/binary>>, Cache1}.

body(T) ->
    <<131, B/binary>> = term_to_binary(T, [{minor_version, 2}]),
    B.

to_refs(Bin, St) ->
    {Out, St1} = walk(Bin, fun to_ref/2, St, []),
    {iolist_to_binary(Out), St1}.

to_ref({atom, Text}, {Cache, Refs} = St) ->
    case index_of(Text, lists:reverse(Refs), 0) of
        I when is_integer(I) ->
            {<<?ATOM_CACHE_REF, I>>, St};
        none when length(Refs) >= 255 ->
            {keep, St};
        none ->
            {Ix, Kind, Cache1} = case Cache of
                                     #{Text := X} -> {X, old, Cache};
                                     _ ->
                                         X = 250 + map_size(Cache),
                                         {X, new, Cache#{Text => X}}
                                 end,
            {<<?ATOM_CACHE_REF, (length(Refs))>>, {Cache1, [{Ix, Kind, Text} | Refs]}}
    end;
to_ref({ref, _}, _St) ->
    error(ref_in_own_term).

index_of(_, [], _) -> none;
index_of(T, [{_, _, T} | _], I) -> I;
index_of(T, [_ | R], I) -> index_of(T, R, I + 1).

%% 131, 68, N, a half byte per ref (new entry bit, segment), the half byte
%% of LongAtoms, then the refs (with length and text when new)
header(Refs) ->
    Long = lists:any(fun({_, new, T}) -> byte_size(T) > 255; (_) -> false end, Refs),
    Halves = [case K of new -> 8; old -> 0 end bor (Ix bsr 8) || {Ix, K, _} <- Refs] ++
        [case Long of true -> 1; false -> 0 end],
    Flags = case Refs of [] -> []; _ -> flag_bytes(Halves) end,
    Entries = [case {K, Long} of
                   {old, _} -> <<(Ix band 255)>>;
                   {new, true} -> <<(Ix band 255), (byte_size(T)):16, T/binary>>;
                   {new, false} -> <<(Ix band 255), (byte_size(T)), T/binary>>
               end || {Ix, K, T} <- Refs],
    [?VERSION_MAGIC, ?DIST_HEADER, length(Refs), Flags | Entries].

flag_bytes([Lo, Hi | T]) -> [(Hi bsl 4) bor Lo | flag_bytes(T)];
flag_bytes([Lo]) -> [Lo];
flag_bytes([]) -> [].

%% A header frame's body (after 131, 68) -> {Refs, Ctl, Msg}, the reader's
%% cache (process dictionary, {ac, Index}) updated.
parse_header(<<N, Rest/binary>>) ->
    FLen = case N of 0 -> 0; _ -> N div 2 + 1 end,
    <<FlagBytes:FLen/binary, Rest1/binary>> = Rest,
    Halves = lists:append([[B band 15, B bsr 4] || <<B>> <= FlagBytes]),
    Long = N > 0 andalso lists:nth(N + 1, Halves) band 1 =:= 1,
    {Refs, Terms} = entries(lists:sublist(Halves, N), Long, Rest1, []),
    Atoms = list_to_tuple([T || {_, _, T} <- Refs]),
    {Expanded, _} = walk(Terms, fun({ref, I}, S) ->
                                        T = element(I + 1, Atoms),
                                        {<<?SMALL_ATOM_UTF8_EXT, (byte_size(T)), T/binary>>, S};
                                   ({atom, _}, S) ->
                                        {keep, S}
                                end, ok, []),
    Bin = iolist_to_binary(Expanded),
    {Ctl, Used} = binary_to_term(<<?VERSION_MAGIC, Bin/binary>>, [used]),
    Msg = case Used - 1 < byte_size(Bin) of
              true -> binary_to_term(<<?VERSION_MAGIC, (binary:part(Bin, Used - 1, byte_size(Bin) - Used + 1))/binary>>);
              false -> none
          end,
    {Refs, Ctl, Msg}.

entries([], _Long, Rest, Acc) ->
    {lists:reverse(Acc), Rest};
entries([H | Hs], Long, <<I, Rest/binary>>, Acc) ->
    Ix = ((H band 7) bsl 8) bor I,
    case H band 8 of
        8 ->
            {T, Rest1} = case Long of
                             true -> <<L:16, T0:L/binary, R/binary>> = Rest, {T0, R};
                             false -> <<L, T0:L/binary, R/binary>> = Rest, {T0, R}
                         end,
            put({ac, Ix}, T),
            entries(Hs, Long, Rest1, [{Ix, new, T} | Acc]);
        0 ->
            T = case get({ac, Ix}) of
                    undefined -> error({never_set, Ix});
                    T0 -> T0
                end,
            entries(Hs, Long, Rest, [{Ix, old, T} | Acc])
    end.

%% The terms token by token (flat: a tuple's or list's head, then its
%% elements), each atom given to Fun({atom, Text} | {ref, Index}, St) ->
%% {Bytes | keep, St}.
walk(<<>>, _F, St, Acc) ->
    {lists:reverse(Acc), St};
walk(<<T, L:16, Text:L/binary, R/binary>> = B, F, St, Acc) when T =:= 100; T =:= 118 ->
    atom(B, 3 + L, {atom, Text}, R, F, St, Acc);
walk(<<T, L, Text:L/binary, R/binary>> = B, F, St, Acc) when T =:= 115; T =:= 119 ->
    atom(B, 2 + L, {atom, Text}, R, F, St, Acc);
walk(<<?ATOM_CACHE_REF, I, R/binary>> = B, F, St, Acc) ->
    atom(B, 2, {ref, I}, R, F, St, Acc);
walk(<<T, _/binary>> = B, F, St, Acc) when T =:= 88; T =:= 103; T =:= 101; T =:= 89; T =:= 102 ->
    Tail = maps:get(T, #{88 => 12, 103 => 9, 101 => 5, 89 => 8, 102 => 5}),
    embedded(B, 1, Tail, F, St, Acc);
walk(<<T, N:16, _/binary>> = B, F, St, Acc) when T =:= 90; T =:= 114 ->
    embedded(B, 3, case T of 90 -> 4; 114 -> 1 end + 4 * N, F, St, Acc);
walk(<<T, _/binary>> = B, F, St, Acc) ->
    Size = case B of
               <<97, _/binary>> -> 2;
               <<98, _/binary>> -> 5;
               <<70, _/binary>> -> 9;
               <<106, _/binary>> -> 1;
               <<104, _/binary>> -> 2;
               <<105, _/binary>> -> 5;
               <<108, _/binary>> -> 5;
               <<116, _/binary>> -> 5;
               <<107, L:16, _/binary>> -> 3 + L;
               <<109, L:32, _/binary>> -> 5 + L;
               <<77, L:32, _/binary>> -> 6 + L;
               <<110, L, _/binary>> -> 3 + L;
               <<111, L:32, _/binary>> -> 6 + L;
               _ -> error({tag, T})
           end,
    <<Tok:Size/binary, R/binary>> = B,
    walk(R, F, St, [Tok | Acc]).

atom(B, Size, What, R, F, St, Acc) ->
    {Out, St1} = F(What, St),
    Tok = case Out of keep -> binary:part(B, 0, Size); _ -> Out end,
    walk(R, F, St1, [Tok | Acc]).

%% a pid, port or reference: Head bytes, its node atom, Tail bytes
embedded(B, Head, Tail, F, St, Acc) ->
    <<H:Head/binary, R/binary>> = B,
    {[A], St1} = walk_one(R, F, St),
    ASize = atom_size(R),
    <<_:ASize/binary, TailB:Tail/binary, R2/binary>> = R,
    walk(R2, F, St1, [TailB, A, H | Acc]).

walk_one(R, F, St) ->
    ASize = atom_size(R),
    <<A:ASize/binary, _/binary>> = R,
    walk(A, F, St, []).

atom_size(<<T, L:16, _/binary>>) when T =:= 100; T =:= 118 -> 3 + L;
atom_size(<<T, L, _/binary>>) when T =:= 115; T =:= 119 -> 2 + L;
atom_size(<<?ATOM_CACHE_REF, _, _/binary>>) -> 2.

handshake(S, MyName, Cookie, Creation, Tmo, More) ->
    Name = list_to_binary(MyName),
    ok = gen_tcp:send(S, <<$N, (?DFLAGS bor More):64, Creation:32, (byte_size(Name)):16,
                           Name/binary>>),
    case gen_tcp:recv(S, 0, Tmo) of
        {ok, <<$s, "ok">>} -> ok;
        {ok, <<$s, "ok_simultaneous">>} -> ok;
        Status -> error({badmatch, {status, Status}})
    end,
    {ok, <<$N, _Flags:64, Challenge:32, _Cr:32, NLen:16, _Peer:NLen/binary>>} = gen_tcp:recv(S, 0, Tmo),
    Mine = rand:uniform(16#FFFFFFFF),
    ok = gen_tcp:send(S, <<$r, Mine:32, (digest(Cookie, Challenge))/binary>>),
    Ack = digest(Cookie, Mine),
    {ok, <<$a, Ack:16/binary>>} = gen_tcp:recv(S, 0, Tmo),
    ok.

digest(Cookie, Challenge) ->
    erlang:md5([Cookie, integer_to_list(Challenge)]).

%% The reader: waits for the go (the socket is its own then), monitors
%% the owner, and reads until told to stop.
reader_start(Id, S) ->
    receive
        {go, Owner} ->
            _ = erlang:monitor(process, Owner),
            ok = inet:setopts(S, [{active, once}]),
            reading(Owner, Id, S, <<>>)
    after 10000 ->
        gen_tcp:close(S)
    end.

reading(Owner, Id, S, Buf) ->
    receive
        {tcp, S, Data} ->
            Rest = frames(Owner, Id, S, <<Buf/binary, Data/binary>>),
            ok = inet:setopts(S, [{active, once}]),
            reading(Owner, Id, S, Rest);
        {tcp_closed, S} ->
            Owner ! {rawdist_closed, Id};
        {tcp_error, S, Why} ->
            Owner ! {rawdist_closed, Id, Why};
        {stop_reading, From, Tag} ->
            % an {active, once} already armed may still deliver one packet:
            % disarm first; what was read is forwarded, nothing more is read
            ok = inet:setopts(S, [{active, false}]),
            receive {tcp, S, Data} -> _ = frames(Owner, Id, S, <<Buf/binary, Data/binary>>)
            after 0 -> ok
            end,
            From ! {Tag, stopped},
            stalled(S);
        close ->
            gen_tcp:close(S);
        {'DOWN', _, process, Owner, _} ->
            gen_tcp:close(S)
    end.

stalled(S) ->
    receive
        close -> gen_tcp:close(S);
        {'DOWN', _, process, _, _} -> gen_tcp:close(S)
    end.

frames(Owner, Id, S, <<0:32, Rest/binary>>) ->
    _ = gen_tcp:send(S, <<0:32>>), % tick: answer it
    frames(Owner, Id, S, Rest);
frames(Owner, Id, S, <<Len:32, ?VERSION_MAGIC, ?DIST_HEADER, Body:(Len - 2)/binary,
                        Rest/binary>>) ->
    true = get(header),
    {Refs, Ctl, Msg} = parse_header(Body),
    Owner ! {rawdist_header, Id, Refs, Ctl, Msg},
    Owner ! {rawdist, Id, Ctl, Msg},
    frames(Owner, Id, S, Rest);
frames(Owner, Id, S, <<Len:32, Frame:Len/binary, Rest/binary>>) ->
    case {get(header), Frame} of
        {true, _} ->
            Owner ! {rawdist_bad, Id, Frame},
            exit(normal);
        {_, <<?PASS_THROUGH, Body/binary>>} ->
            pass_through(Owner, Id, S, Body, Rest)
    end;
frames(_Owner, _Id, _S, Buf) ->
    Buf.

pass_through(Owner, Id, S, Body, Rest) ->
    {Ctl, Used} = binary_to_term(Body, [used]),
    Msg = case Used < byte_size(Body) of
              true -> binary_to_term(binary:part(Body, Used, byte_size(Body) - Used));
              false -> none
          end,
    Owner ! {rawdist, Id, Ctl, Msg},
    frames(Owner, Id, S, Rest).
