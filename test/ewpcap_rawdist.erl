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
%%%     frame of length 0 being a tick. No atom cache, no fragments are
%%%     offered, so every message is one frame.</li>
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
%%% steps; default 5000), `flags' (more distribution flags to offer, e.g.
%%% DFLAG_DIST_HDR_ATOM_CACHE for bench/ewpcap_bench_atoms.erl, which then
%%% sends its own frames with send_raw/2; default 0).
%%% @end
-module(ewpcap_rawdist).

-export([connect/3, close/1, stop_reading/1, name/1, pid/2]).
-export([send_reg/4, send_ctl/3, send_raw/2, call/3, block_call/4, recv/3]).

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
-define(REG_SEND, 6).
-define(NEW_PID_EXT, 88).
-define(SMALL_ATOM_UTF8_EXT, 119).

-type conn() :: #{id := reference(), sock := gen_tcp:socket(), reader := pid(),
                  name := node(), creation := non_neg_integer()}.
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
        ok = handshake(S, MyName, Cookie1, Creation, Tmo, maps:get(flags, Opts, 0)),
        ok = inet:setopts(S, [{packet, raw}]),
        Id = make_ref(),
        Reader = spawn(fun() -> reader_start(Id, S) end),
        ok = gen_tcp:controlling_process(S, Reader),
        Reader ! {go, self()},
        {ok, #{id => Id, sock => S, reader => Reader, name => list_to_atom(MyName),
               creation => Creation}}
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
send_reg(#{sock := S}, From, Name, Msg) ->
    gen_tcp:send(S, frame({?REG_SEND, From, '', Name}, Msg)).

%% @doc Any control tuple, with Msg (or `none': a control alone), e.g. an
%% EXIT `{3, From, To, Reason}' or a SPAWN_REQUEST.
-spec send_ctl(conn(), tuple(), term()) -> ok | {error, term()}.
send_ctl(#{sock := S}, Ctl, none) ->
    Body = [?PASS_THROUGH, term_to_binary(Ctl, [{minor_version, 2}])],
    gen_tcp:send(S, [<<(iolist_size(Body)):32>> | Body]);
send_ctl(#{sock := S}, Ctl, Msg) ->
    gen_tcp:send(S, frame(Ctl, Msg)).

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

frame(Ctl, Msg) ->
    Body = [?PASS_THROUGH, term_to_binary(Ctl, [{minor_version, 2}]),
            term_to_binary(Msg, [{minor_version, 2}])],
    [<<(iolist_size(Body)):32>> | Body].

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
frames(Owner, Id, S, <<Len:32, ?PASS_THROUGH, Body:(Len - 1)/binary, Rest/binary>>) ->
    {Ctl, Used} = binary_to_term(Body, [used]),
    Msg = case Used < byte_size(Body) of
              true -> binary_to_term(binary:part(Body, Used, byte_size(Body) - Used));
              false -> none
          end,
    Owner ! {rawdist, Id, Ctl, Msg},
    frames(Owner, Id, S, Rest);
frames(_Owner, _Id, _S, Buf) ->
    Buf.
