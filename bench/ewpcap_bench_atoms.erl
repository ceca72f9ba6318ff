%%% @doc Would the atom cache matter? (`make bench-atoms', no root.)
%%%
%%% ewpcapd sends each packet as a pass-through frame (no
%%% DFLAG_DIST_HDR_ATOM_CACHE): `<<Len:32, 112, 131, Ctl, 131, Msg>>',
%%% with the atoms spelled out: SEND's `''', the receiver's node name in
%%% the destination pid, the sender's in the Ref, and `ewpcap'. With the
%%% atom cache the same frame starts with a distribution header
%%% (`131, 68', the four atoms as cache entries, new in the first frame
%%% only) and the terms refer to the atoms by a one-byte index.
%%%
%%% This measures what that changes on the receiving node, the one whose
%%% CPU is most of a packet's cost: a raw distribution client
%%% (test/ewpcap_rawdist.erl, in this node) sends N copies of the packet
%%% message, `{ewpcap, Ref, 1, {M, S, U}, Len, Packet}', to a counting
%%% process of a peer node, in one form and then the other, alternated,
%%% `BENCH_ATOMS_RUNS' times each (default 5); the peer's on-CPU time
%%% (schedstat; the peer runs without scheduler busy waiting, so that it
%%% is its work) per message is compared, the fastest run of each form
%%% (other runs on a shared machine only ever add time). 64 and 1000 B
%%% packets, `BENCH_ATOMS_COUNT' messages per run (default 200000); the
%%% peer's side of both connections has the 1 MiB buffer the library sets
%%% on a daemon's (ewpcap_distbuf).
%%% @end
-module(ewpcap_bench_atoms).

-export([main/0, sink/0]).

-define(DFLAG_DIST_HDR_ATOM_CACHE, 16#2000).
-define(BATCH, 1000). % frames per send

main() ->
    Status = try run() of
                 ok -> 0
             catch
                 C:R:St ->
                     io:format("bench-atoms: crashed: ~p:~p~n~p~n", [C, R, St]),
                     2
             end,
    erlang:halt(Status).

run() ->
    N = list_to_integer(env("BENCH_ATOMS_COUNT", "200000")),
    Runs = list_to_integer(env("BENCH_ATOMS_RUNS", "5")),
    {ok, Peer, PNode} = peer:start(#{name => "ewp_bench_atoms_" ++ os:getpid(),
                                     %% no busy waiting: its CPU is its work
                                     args => ["+sbwt", "none", "+sbwtdcpu", "none",
                                              "+sbwtdio", "none",
                                              "-setcookie", atom_to_list(erlang:get_cookie()),
                                              "-pa", filename:dirname(code:which(?MODULE))]}),
    try
        OsPid = list_to_integer(erpc:call(PNode, os, getpid, [])),
        Results = [begin
                       Sink = erpc:call(PNode, erlang, spawn, [?MODULE, sink, []]),
                       Plain = connect(PNode, 0),
                       Cache = connect(PNode, ?DFLAG_DIST_HDR_ATOM_CACHE),
                       %% the peer reads both as the library reads a daemon's
                       [ok = erpc:call(PNode, net_kernel, setopts,
                                       [ewpcap_rawdist:name(C), [{buffer, 1048576}]])
                        || C <- [Plain, Cache]],
                       Ref = make_ref(),
                       Pairs = [{measure(Plain, plain, Sink, Ref, Size, N, OsPid),
                                 measure(Cache, cache, Sink, Ref, Size, N, OsPid)}
                                || _ <- lists:seq(1, Runs)],
                       ewpcap_rawdist:close(Plain),
                       ewpcap_rawdist:close(Cache),
                       {P, C} = lists:unzip(Pairs),
                       {Size, lists:min(P), lists:min(C), P, C}
                   end || Size <- [64, 1000]],
        io:format("~nAtom cache: the receiving node's CPU per packet message (ns, on-CPU, "
                  "fastest of ~b runs of ~b messages each)~n~n"
                  "| size | pass-through, atoms spelled out | atom cache header | cache/plain |~n"
                  "|---:|---:|---:|---:|~n", [Runs, N]),
        [io:format("| ~b | ~b | ~b | ~.2fx |~n", [S, round(P), round(C), C / P])
         || {S, P, C, _, _} <- Results],
        [io:format("~n~b B runs: plain ~w~n        cache ~w~n",
                   [S, [round(X) || X <- Ps], [round(X) || X <- Cs]])
         || {S, _, _, Ps, Cs} <- Results],
        ok
    after
        peer:stop(Peer)
    end.

env(Name, Default) ->
    case os:getenv(Name) of
        false -> Default;
        "" -> Default;
        V -> V
    end.

connect(Node, Flags) ->
    {ok, C} = ewpcap_rawdist:connect(Node, erlang:get_cookie(), #{flags => Flags}),
    C.

%% Sends N frames of the given form to Sink and waits until it counted
%% them; the peer's on-CPU ns per message meanwhile.
measure(Conn, Form, Sink, Ref, Size, N, OsPid) ->
    Pkt = binary:copy(<<0>>, Size),
    Msg = {ewpcap, Ref, 1, {1700, 123456, 789}, Size, Pkt},
    {First, Next} = frames(Form, Sink, Msg),
    Batch = binary:copy(Next, ?BATCH),
    ok = ewpcap_rawdist:send_raw(Conn, First),
    sync(Sink, 1),
    T0 = task_ns(OsPid),
    send(Conn, Batch, Next, N),
    sync(Sink, N),
    (task_ns(OsPid) - T0) / N.

send(_Conn, _Batch, _One, 0) ->
    ok;
send(Conn, Batch, One, N) when N >= ?BATCH ->
    ok = ewpcap_rawdist:send_raw(Conn, Batch),
    send(Conn, Batch, One, N - ?BATCH);
send(Conn, Batch, One, N) ->
    ok = ewpcap_rawdist:send_raw(Conn, One),
    send(Conn, Batch, One, N - 1).

%% Waits until the sink counted N messages since its last reset, then
%% resets it.
sync(Sink, N) ->
    Sink ! {count, self(), N},
    receive
        {Sink, counted} -> ok
    after 30000 ->
        erlang:error({sink_timeout, N})
    end.

%% The first frame of a connection and every next one. Pass-through: the
%% same frame. Atom cache: the first frame makes the four cache entries,
%% the next ones only refer to them.
frames(plain, Sink, Msg) ->
    Body = [112, t2b({2, '', Sink}), t2b(Msg)],
    F = iolist_to_binary([<<(iolist_size(Body)):32>> | Body]),
    {F, F};
frames(cache, Sink, {ewpcap, Ref, Dlt, Time, Len, Pkt}) ->
    Atoms = ['', node(Sink), node(Ref), ewpcap],
    Ctl = <<104, 3, 97, 2, 82, 0, (strip_node(Sink, 88, 1))/binary>>,
    Msg = <<104, 6, 82, 3, (strip_node(Ref, 90, 2))/binary,
            (body(Dlt))/binary, (body(Time))/binary, (body(Len))/binary, (body(Pkt))/binary>>,
    {frame(header(Atoms, true), Ctl, Msg), frame(header(Atoms, false), Ctl, Msg)}.

frame(Header, Ctl, Msg) ->
    Body = <<Header/binary, Ctl/binary, Msg/binary>>,
    <<(byte_size(Body)):32, Body/binary>>.

%% 131, 68, the number of refs, their flags (a half byte each: new entry
%% bit, segment 0; then the half byte of LongAtoms, 0), the refs (internal
%% index 10.., with the text when new).
header(Atoms, New) ->
    NewBit = case New of true -> 8; false -> 0 end,
    Halves = [NewBit || _ <- Atoms] ++ [0],
    Flags = flag_bytes(Halves),
    Refs = [case New of
                true ->
                    T = atom_to_binary(A, utf8),
                    <<(10 + I), (byte_size(T)), T/binary>>;
                false ->
                    <<(10 + I)>>
            end || {I, A} <- lists:zip(lists:seq(0, length(Atoms) - 1), Atoms)],
    iolist_to_binary([131, 68, length(Atoms), Flags | Refs]).

flag_bytes([Lo, Hi | T]) -> [(Hi bsl 4) bor Lo | flag_bytes(T)];
flag_bytes([Lo]) -> [Lo];
flag_bytes([]) -> [].

%% A pid (88) or a ref (90) as term_to_binary/1 encodes it, with its node
%% atom replaced by ATOM_CACHE_REF Index.
strip_node(Term, Tag, Index) ->
    <<131, Tag, Rest/binary>> = t2b(Term),
    {Head, AtomAndTail} = case Tag of
                              90 -> <<L:16, R/binary>> = Rest, {<<L:16>>, R};
                              88 -> {<<>>, Rest}
                          end,
    Tail = case AtomAndTail of
               <<119, N, _:N/binary, T/binary>> -> T;
               <<118, N:16, _:N/binary, T/binary>> -> T;
               <<115, N, _:N/binary, T/binary>> -> T;
               <<100, N:16, _:N/binary, T/binary>> -> T
           end,
    <<Tag, Head/binary, 82, Index, Tail/binary>>.

body(T) ->
    <<131, B/binary>> = t2b(T),
    B.

%% As ewpcapd encodes: atoms as SMALL_ATOM_UTF8_EXT.
t2b(T) ->
    term_to_binary(T, [{minor_version, 2}]).

task_ns(Pid) ->
    Dir = "/proc/" ++ integer_to_list(Pid) ++ "/task",
    {ok, Tids} = file:list_dir(Dir),
    lists:sum([case file:read_file(filename:join([Dir, T, "schedstat"])) of
                   {ok, B} -> binary_to_integer(hd(string:lexemes(B, " \n")));
                   {error, _} -> 0
               end || T <- Tids]).

%%% -------------------------------------------------------------------
%%% The sink, on the peer
%%% -------------------------------------------------------------------

sink() ->
    sink(0).

sink(N) ->
    receive
        {ewpcap, _, _, _, _, _} ->
            sink(N + 1);
        {count, From, Want} when N >= Want ->
            From ! {self(), counted},
            sink(0);
        {count, From, Want} ->
            sink_wait(N, From, Want)
    end.

sink_wait(N, From, Want) when N >= Want ->
    From ! {self(), counted},
    sink(0);
sink_wait(N, From, Want) ->
    receive
        {ewpcap, _, _, _, _, _} -> sink_wait(N + 1, From, Want)
    end.
