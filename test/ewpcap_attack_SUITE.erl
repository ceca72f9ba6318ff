%%% @doc ewpcapd attacked as a reviewer would (issue 10): one group per
%%% finding, each case failing on the daemon before its fix.
%%%
%%% Every case runs against a standalone ewpcapd of its own group (started
%%% here with the flags the group needs, `--stdin', killed at the end by its
%%% OS pid), so a daemon wedged by a case before the fix never blocks the
%%% next group. Traffic only on lo; files only in this run's priv_dir.
%%%%%% - `files': `--files DIR' confinement: symbolic links (last component,
%%%   middle), "..", absolute paths outside, a FIFO, a device node, an
%%%   existing file for a dump (refused, untouched), a new dump's mode.
%%% - `protocol': an earlier filter compile never overwrites a later
%%%   filter; an EXIT with reason normal from a pid not linked to a handle
%%%   (and exit/2 normal) leaves it open; a spawn (rpc) request whose caller
%%%   is not on the connected node is refused.
%%% - `descriptors': RLIMIT_NOFILE reached while a connection waits.
%%% - `defaults': the embedded daemon's listen address, the first log
%%%   line, a device name forging a log line, getrandom failing.
%%%
%%% The event loop under load (`loop') and the caps (`caps') are
%%% ewpcap_attack_load_SUITE's.
-module(ewpcap_attack_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-export([suite/0, all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_group/2, end_per_group/2, init_per_testcase/2, end_per_testcase/2]).
-export([files_symlink_last/0, files_symlink_last/1, files_symlink_middle/0,
         files_symlink_middle/1, files_dotdot_absolute/0, files_dotdot_absolute/1,
         files_fifo_device/0, files_fifo_device/1, files_dump_existing/0,
         files_dump_existing/1, files_dump_mode/0, files_dump_mode/1,
         files_read_ok/0, files_read_ok/1]).
-export([filter_later_wins/0, filter_later_wins/1, exit_normal_unlinked/0,
         exit_normal_unlinked/1, spawn_foreign_caller/0, spawn_foreign_caller/1,
         spawn_refused_reply/0, spawn_refused_reply/1]).
-export([emfile_pause/0, emfile_pause/1, nofile_raised/0, nofile_raised/1]).
-export([embedded_loopback/0, embedded_loopback/1, first_log_line/0, first_log_line/1,
         log_escaped/0, log_escaped/1, getrandom_fails_stop/0, getrandom_fails_stop/1]).

-import(ewpcap_attack, [start_daemon/1, start_daemon/3, daemon_lines/1, stop_daemon/1,
                        node_of/1, in_dir/2, realpath/1, handles/1, has_handle/2,
                        wait_until/1, wait_until_ms/2, flush/0]).

-define(CALL_WAIT, 10000).      % ms a refusal may take before it counts as a hang
-define(WAIT, 5000).

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [{group, files}, {group, protocol}, {group, descriptors}, {group, defaults}].

groups() ->
    % the FIFO last: before the fix it wedged the daemon for good
    [{files, [], [files_symlink_last, files_symlink_middle, files_dotdot_absolute,
                  files_dump_existing, files_dump_mode, files_read_ok, files_fifo_device]},
     {protocol, [], [filter_later_wins, exit_normal_unlinked, spawn_foreign_caller,
                     spawn_refused_reply]},
     {descriptors, [], [emfile_pause, nofile_raised]},
     {defaults, [], [embedded_loopback, first_log_line, log_escaped, getrandom_fails_stop]}].

init_per_suite(Config) ->
    case os:cmd("id -u") of
        "0\n" ->
            {ok, _} = application:ensure_all_started(ewpcap),
            Config;
        _ ->
            {skip, "needs root (live capture on lo, mknod)"}
    end.

end_per_suite(_Config) ->
    ok.

init_per_group(files, Config) ->
    Priv = ?config(priv_dir, Config),
    Dir = filename:join(Priv, "files"),
    Out = filename:join(Priv, "outside"),
    ok = filelib:ensure_path(Dir),
    ok = filelib:ensure_path(Out),
    {ok, RealDir} = realpath(Dir),
    {ok, RealOut} = realpath(Out),
    D = start_daemon(["--files", RealDir]),
    [{daemon, D}, {dir, RealDir}, {outside, RealOut} | Config];
init_per_group(protocol, Config) ->
    [{daemon, start_daemon([])} | Config];
init_per_group(defaults, Config) ->
    % no --listen: the defaults are what is tested
    [{daemon, start_daemon([])} | Config];
init_per_group(_, Config) ->
    Config.

end_per_group(_, Config) ->
    case ?config(daemon, Config) of
        undefined -> ok;
        D -> stop_daemon(D)
    end,
    ok.

init_per_testcase(_Case, Config) ->
    flush(),
    Config.

end_per_testcase(_Case, _Config) ->
    flush(),
    ok.

%%% ===================================================================
%%% files: --files DIR
%%% ===================================================================

files_symlink_last() ->
    [{doc, "DIR/link -> a file outside: a read and a dump through it are refused, the target untouched"}].
files_symlink_last(Config) ->
    Node = node_of(Config),
    Victim = outside(Config, "victim_last.pcap"),
    ok = file:write_file(Victim, known_pcap()),
    Link = in_dir(Config, "last_link.pcap"),
    ok = file:make_symlink(Victim, Link),
    ?assertEqual({error, bad_path}, open_file(Node, Link)),
    ?assertEqual({error, bad_path}, open_file(Node, "last_link.pcap")),
    R = open_dump(Node, Link),
    ct:pal("dump through a link in the last component: ~p", [R]),
    ?assertMatch({error, A} when A =:= eexist; A =:= bad_path, R),
    ?assertEqual({ok, known_pcap()}, file:read_file(Victim)),
    assert_alive(Config).

files_symlink_middle() ->
    [{doc, "DIR/sub -> a directory outside, and DIR/in -> DIR/real (inside): paths through either are refused"}].
files_symlink_middle(Config) ->
    Node = node_of(Config),
    ok = file:write_file(outside(Config, "victim_mid.pcap"), known_pcap()),
    ok = file:make_symlink(?config(outside, Config), in_dir(Config, "sub")),
    ok = filelib:ensure_path(in_dir(Config, "real")),
    ok = file:write_file(in_dir(Config, "real/in.pcap"), known_pcap()),
    ok = file:make_symlink(in_dir(Config, "real"), in_dir(Config, "in")),
    ?assertEqual({error, bad_path}, open_file(Node, "sub/victim_mid.pcap")),
    ?assertEqual({error, bad_path}, open_dump(Node, "sub/new_mid.pcap")),
    ?assertNot(filelib:is_file(outside(Config, "new_mid.pcap"))),
    ?assertEqual({error, bad_path}, open_file(Node, "in/in.pcap")),
    % the same file without the link opens
    ?assertMatch({ok, _}, open_file(Node, "real/in.pcap")),
    assert_alive(Config).

files_dotdot_absolute() ->
    [{doc, "\"..\" out of DIR and absolute paths outside it are refused, for reads and dumps"}].
files_dotdot_absolute(Config) ->
    Node = node_of(Config),
    ok = file:write_file(outside(Config, "victim_dd.pcap"), known_pcap()),
    ?assertEqual({error, bad_path}, open_file(Node, "../outside/victim_dd.pcap")),
    ?assertEqual({error, bad_path}, open_file(Node, outside(Config, "victim_dd.pcap"))),
    ?assertEqual({error, bad_path}, open_file(Node, "/etc/passwd")),
    ?assertEqual({error, bad_path}, open_dump(Node, "../outside/new_dd.pcap")),
    ?assertEqual({error, bad_path}, open_dump(Node, outside(Config, "new_dd2.pcap"))),
    ?assertEqual({error, bad_path}, open_file(Node, in_dir(Config, "../outside/victim_dd.pcap"))),
    ?assertNot(filelib:is_file(outside(Config, "new_dd.pcap"))),
    ?assertNot(filelib:is_file(outside(Config, "new_dd2.pcap"))),
    assert_alive(Config).

files_fifo_device() ->
    [{doc, "A FIFO and a device node in DIR are refused at once (not_regular_file); the daemon never blocks on them"}].
files_fifo_device(Config) ->
    Node = node_of(Config),
    Fifo = in_dir(Config, "fifo.pcap"),
    Dev = in_dir(Config, "null.pcap"),
    "" = os:cmd("mkfifo " ++ Fifo),
    "" = os:cmd("mknod " ++ Dev ++ " c 1 3"),
    ?assertEqual({error, not_regular_file}, open_file(Node, "fifo.pcap")),
    ?assertEqual({error, not_regular_file}, open_file(Node, "null.pcap")),
    ?assertEqual({error, not_regular_file}, open_file(Node, ".")),
    ?assertEqual({error, eexist}, open_dump(Node, "fifo.pcap")),
    assert_alive(Config).

files_dump_existing() ->
    [{doc, "A dump to an existing file is refused (eexist) and the file keeps its bytes"}].
files_dump_existing(Config) ->
    Node = node_of(Config),
    Path = in_dir(Config, "exists.pcap"),
    ok = file:write_file(Path, <<"keep these bytes">>),
    ?assertEqual({error, eexist}, open_dump(Node, "exists.pcap")),
    ?assertEqual({error, eexist}, open_dump(Node, Path)),
    ?assertEqual({ok, <<"keep these bytes">>}, file:read_file(Path)),
    assert_alive(Config).

files_dump_mode() ->
    [{doc, "A new dump file is created with mode 0600, whatever the umask"}].
files_dump_mode(Config) ->
    Node = node_of(Config),
    Path = in_dir(Config, "new_mode.pcap"),
    ?assertMatch({ok, _}, open_dump(Node, "new_mode.pcap")),
    {ok, Info} = file:read_file_info(Path),
    ct:pal("mode of the new dump: ~.8b", [element(8, Info) band 8#7777]),
    ?assertEqual(8#600, element(8, Info) band 8#7777),
    ?assertEqual(regular, element(3, Info)),
    assert_alive(Config).

files_read_ok() ->
    [{doc, "A savefile in DIR, by relative and by absolute path, is read to its end"}].
files_read_ok(Config) ->
    Node = node_of(Config),
    ok = file:write_file(in_dir(Config, "good.pcap"), known_pcap()),
    {ok, S} = ewpcap:open(Node, {file, "good.pcap"}, []),
    ?assertMatch({ok, _}, ewpcap:read(S, ?WAIT)),
    ok = ewpcap:close(S),
    {ok, S2} = ewpcap:open(Node, {file, in_dir(Config, "good.pcap")}, []),
    ?assertMatch({ok, _}, ewpcap:read(S2, ?WAIT)),
    ok = ewpcap:close(S2),
    ?assertEqual({error, enoent}, open_file(Node, "missing.pcap")),
    assert_alive(Config).

%%% ===================================================================
%%% protocol edges
%%% ===================================================================

filter_later_wins() ->
    [{doc, "A long filter compiling on a worker, then a short one set in the loop: the short one stays set"}].
filter_later_wins(Config) ->
    Node = node_of(Config),
    Port = 47000 + rand:uniform(1000),
    {ok, S} = ewpcap:open(Node, <<"lo">>, [{filter, "udp port 9 and udp port 10"}]),
    Big = list_to_binary(string:copies("ip and ", 15000) ++ "ip"),
    Short = "udp dst port " ++ integer_to_list(Port),
    Tag = make_ref(),
    % both on this node's connection, in this order: the long one is
    % deferred to a worker before the short one is even read
    {ewpcap, Node} ! {'$gen_call', {self(), Tag}, {filter, S#ewpcap_resource.ref, Big, [{limit, -1}]}},
    ok = ewpcap:filter(S, Short),
    ShortDone = erlang:monotonic_time(millisecond),
    BigReply = receive {Tag, R} -> R after 120000 -> ct:fail(long_filter_no_reply) end,
    BigDone = erlang:monotonic_time(millisecond),
    ct:pal("long filter replied ~p, ~p ms after the short one", [BigReply, BigDone - ShortDone]),
    ?assertEqual(ok, BigReply),
    {ok, Info} = ewpcap:info(Node),
    [H] = [H || H <- proplists:get_value(handles, Info),
                proplists:get_value(ref, H) =:= S#ewpcap_resource.ref],
    ?assertEqual(list_to_binary(Short), proplists:get_value(filter, H)),
    % and it is the one the kernel runs: port+1 is not captured, port is
    {ok, U} = gen_udp:open(0),
    ok = gen_udp:send(U, {127, 0, 0, 1}, Port + 1, <<"not this">>),
    ok = gen_udp:send(U, {127, 0, 0, 1}, Port, <<"this one">>),
    {ok, Pkt} = ewpcap:read(S, ?WAIT),
    ?assertEqual(<<"this one">>, binary:part(Pkt, byte_size(Pkt) - 8, 8)),
    ok = gen_udp:close(U),
    ok = ewpcap:close(S).

exit_normal_unlinked() ->
    [{doc, "EXIT normal from a pid not linked to a handle, and exit/2 normal, leave it open; its link's exit closes it"}].
exit_normal_unlinked(Config) ->
    Node = node_of(Config),
    {ok, C} = ewpcap_rawdist:connect(Node, erlang:get_cookie(), #{}),
    Tag = ewpcap_rawdist:call(C, ewpcap, {open, <<"lo">>, [{filter, "udp port 9 and udp port 10"}]}),
    {ok, {ok, Ref}} = ewpcap_rawdist:recv(C, Tag, ?WAIT),
    Linked = ewpcap_rawdist:pid(C, 1),
    HPid = receive {rawdist, _, {1, P, Linked}, none} -> P after ?WAIT -> ct:fail(no_link) end,
    Stranger = ewpcap_rawdist:pid(C, 77),
    ok = ewpcap_rawdist:send_ctl(C, {3, Stranger, HPid, normal}, none),   % EXIT
    ok = ewpcap_rawdist:send_ctl(C, {8, Stranger, HPid, normal}, none),   % EXIT2
    ok = ewpcap_rawdist:send_ctl(C, {3, Stranger, HPid, kill}, none),     % EXIT, not linked
    % a call on the same connection: read after the signals
    Tag2 = ewpcap_rawdist:call(C, ewpcap, info),
    {ok, {ok, Info}} = ewpcap_rawdist:recv(C, Tag2, ?WAIT),
    ?assert(lists:any(fun(H) -> proplists:get_value(ref, H) =:= Ref end,
                      proplists:get_value(handles, Info))),
    ok = ewpcap_rawdist:send_ctl(C, {3, Linked, HPid, normal}, none),     % its link ends
    ?assert(wait_until(fun() -> not has_handle(Node, Ref) end)),
    ewpcap_rawdist:close(C).

spawn_foreign_caller() ->
    [{doc, "An rpc (SPAWN_REQUEST) whose caller pid is of another node is refused: no handle is opened"}].
spawn_foreign_caller(Config) ->
    Node = node_of(Config),
    {ok, C} = ewpcap_rawdist:connect(Node, erlang:get_cookie(), #{}),
    [_, Host] = string:split(atom_to_list(Node), "@"),
    Foreign = binary_to_term(<<131, 88, 119, (length("victim@" ++ Host)), (list_to_binary("victim@" ++ Host))/binary,
                               5:32, 0:32, 7:32>>),
    Before = handle_count(Node),
    Args = [make_ref(), ewpcap, open, [<<"lo">>, [{filter, "udp port 9 and udp port 10"}]]],
    ReqId = make_ref(),
    ok = ewpcap_rawdist:send_ctl(C, {29, ReqId, Foreign, Foreign, {erpc, execute_call, 4}, [monitor]},
                                 Args),
    % the same request from its own pid is served: the refusal above was read first
    Own = ewpcap_rawdist:pid(C, 3),
    ReqId2 = make_ref(),
    ok = ewpcap_rawdist:send_ctl(C, {29, ReqId2, Own, Own, {erpc, execute_call, 4}, [monitor]},
                                 [make_ref(), ewpcap, info, []]),
    receive {rawdist, _, {31, ReqId2, Own, _, _}, none} -> ok after ?WAIT -> ct:fail(no_spawn_reply) end,
    Frames = receive_all(0),
    ct:pal("frames after the foreign spawn: ~p", [Frames]),
    ?assertEqual([], [F || {rawdist, _, Ctl, _} = F <- Frames, element(2, Ctl) =:= ReqId]),
    ?assertEqual(Before, handle_count(Node)),
    ewpcap_rawdist:close(C).

spawn_refused_reply() ->
    [{doc, "A spawn the daemon does not run (io:format/1, erpc with a malformed argument list) gets "
           "a SPAWN_REPLY with the error notsup: spawn_request's caller is answered, never left waiting"}].
spawn_refused_reply(Config) ->
    Node = node_of(Config),
    Before = handle_count(Node),
    ReqId = spawn_request(Node, io, format, ["x"], [{reply, yes}]),
    receive
        {spawn_reply, ReqId, Status, Result} -> ?assertEqual({error, notsup}, {Status, Result})
    after ?WAIT -> ct:fail(no_spawn_reply)
    end,
    % erpc:execute_call/4 with three arguments, on the raw connection
    {ok, C} = ewpcap_rawdist:connect(Node, erlang:get_cookie(), #{}),
    Own = ewpcap_rawdist:pid(C, 3),
    ReqId2 = make_ref(),
    ok = ewpcap_rawdist:send_ctl(C, {29, ReqId2, Own, Own, {erpc, execute_call, 4}, [monitor]},
                                 [make_ref(), ewpcap, info]),
    receive
        {rawdist, _, {31, ReqId2, Own, _, Error}, none} -> ?assertEqual(notsup, Error)
    after ?WAIT -> ct:fail(no_raw_spawn_reply)
    end,
    ewpcap_rawdist:close(C),
    ?assertEqual(Before, handle_count(Node)).

%%% ===================================================================
%%% descriptors: out of file descriptors
%%% ===================================================================

emfile_pause() ->
    [{doc, "RLIMIT_NOFILE reached: open answers {error, emfile}, a pending connection costs no CPU "
           "and no log flood (against an idle window), captures keep running, new nodes get in once fds are free"}].
emfile_pause(_Config) ->
    D = start_daemon(["--listen", "127.0.0.1"], [], ["prlimit", "--nofile=40:40"]),
    try emfile_pause_on(D) after stop_daemon(D) end.

nofile_raised() ->
    [{doc, "Started with a soft RLIMIT_NOFILE of 64 under a hard one of 4096 (systemd's default is "
           "1024: fewer than the 1,024 handles the caps allow), ewpcapd raises the soft limit to the hard"}].
nofile_raised(_Config) ->
    #{os_pid := OsPid} = D = start_daemon(["--listen", "127.0.0.1"], [], ["prlimit", "--nofile=64:4096"]),
    try
        {ok, Limits} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/limits"),
        [Line] = [L || L <- binary:split(Limits, <<"\n">>, [global]),
                       binary:match(L, <<"Max open files">>) =/= nomatch],
        ct:pal("~s", [Line]),
        ?assertMatch([<<"Max">>, <<"open">>, <<"files">>, <<"4096">>, <<"4096">> | _],
                     binary:split(Line, <<" ">>, [global, trim_all]))
    after
        stop_daemon(D)
    end.

emfile_pause_on(#{node := Node, os_pid := OsPid} = D) ->
    Port0 = 46000 + rand:uniform(1000),
    % a snaplen each: a capture and a packet socket each (the same options
    % would share one capture, and fds would never run out)
    Open = fun(K) -> ewpcap:open(Node, <<"lo">>, [{buffer, 1 bsl 20}, {snaplen, 65535 - K},
                                                 {filter, "udp dst port " ++ integer_to_list(Port0 + K)}]) end,
    {Handles, Last} = open_until_error(Open, 0, 100, []),
    ct:pal("~p handles open; then ~p", [length(Handles), Last]),
    Hz = list_to_integer(string:trim(os:cmd("getconf CLK_TCK"))),
    Window = 1500,
    Idle = cpu_ticks_over(OsPid, Window),
    LinesBefore = length(daemon_lines(D)),
    [_, Host] = string:split(atom_to_list(Node), "@"),
    [Alive, _] = string:split(atom_to_list(Node), "@"),
    {port, DPort, _} = erl_epmd:port_please(Alive, Host),
    {ok, Sock} = gen_tcp:connect({127, 0, 0, 1}, DPort, [binary, {active, false}]),
    Busy = cpu_ticks_over(OsPid, Window),
    Lines = lists:nthtail(LinesBefore, daemon_lines(D)),
    Accept = [L || L <- Lines, is_binary(L), binary:match(L, <<"accept">>) =/= nomatch],
    ct:pal("CPU ticks (~p/s) over ~p ms: idle ~p, a connection pending ~p; ~p log lines "
           "about accept: ~p", [Hz, Window, Idle, Busy, length(Accept), lists:sublist(Accept, 3)]),
    _ = gen_tcp:close(Sock),
    % the captures still run: the first handle gets its datagram
    [{_, S0} | _] = lists:reverse(Handles),
    {ok, U} = gen_udp:open(0),
    ok = gen_udp:send(U, {127, 0, 0, 1}, Port0 + 1, <<"still here">>),
    Read = ewpcap:read(S0, ?WAIT),
    ok = gen_udp:close(U),
    Errors = [M || {ewpcap_error, _, _} = M <- receive_all(0)],
    [ewpcap:close(S) || {_, S} <- Handles],
    % fds are free again: a new node gets in (polled, bounded)
    Connected = wait_until(fun() ->
                                   case ewpcap_rawdist:connect(Node, erlang:get_cookie(), #{timeout => 1000}) of
                                       {ok, C} -> ewpcap_rawdist:close(C), true;
                                       _ -> false
                                   end
                           end),
    ?assertEqual({error, emfile}, Last),
    ?assertEqual([], Errors),
    ?assertMatch({ok, _}, Read),
    ?assert(Busy =< 2 * Idle + Hz div 4),
    ?assert(length(Accept) < 20),
    ?assert(Connected).

open_until_error(_Open, N, Max, Acc) when N >= Max ->
    {Acc, too_many};
open_until_error(Open, N, Max, Acc) ->
    case Open(N + 1) of
        {ok, S} -> open_until_error(Open, N + 1, Max, [{N + 1, S} | Acc]);
        Error -> {Acc, Error}
    end.

%% utime + stime of OsPid, in clock ticks, over Ms milliseconds
cpu_ticks_over(OsPid, Ms) ->
    T0 = cpu_ticks(OsPid),
    receive after Ms -> ok end,
    cpu_ticks(OsPid) - T0.

cpu_ticks(OsPid) ->
    {ok, B} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat"),
    [_, After] = binary:split(B, <<") ">>),
    Fields = binary:split(After, <<" ">>, [global]),
    % fields 14 and 15 of stat(5), counted from the state (field 3)
    binary_to_integer(lists:nth(12, Fields)) + binary_to_integer(lists:nth(13, Fields)).

%%% ===================================================================
%%% defaults
%%% ===================================================================

embedded_loopback() ->
    [{doc, "The embedded daemon listens on loopback, not on every interface"}].
embedded_loopback(_Config) ->
    Node = ewpcap:node(),
    [Alive, Host] = string:split(atom_to_list(Node), "@"),
    {port, Port, _} = erl_epmd:port_please(Alive, Host),
    Out = os:cmd("ss -Hltn 'sport = :" ++ integer_to_list(Port) ++ "'"),
    ct:pal("embedded ~p listens: ~s", [Node, Out]),
    [Local | _] = [L || L <- string:lexemes(Out, " \n"), lists:suffix(":" ++ integer_to_list(Port), L)],
    ?assertMatch("127." ++ _, Local).

getrandom_fails_stop() ->
    [{doc, "getrandom fails (ENOSYS, from an LD_PRELOAD shim built here): at the first connection the "
           "daemon logs it and exits with status 1; it never makes a challenge from a weaker source, "
           "and the connecting node gets no session"}].
getrandom_fails_stop(Config) ->
    Dir = ?config(priv_dir, Config),
    Src = filename:join(Dir, "getrandom_fail.c"),
    So = filename:join(Dir, "getrandom_fail.so"),
    ok = file:write_file(Src, <<"#include <errno.h>\n#include <stddef.h>\n#include <sys/types.h>\n"
                                "ssize_t getrandom(void *b, size_t n, unsigned f)\n"
                                "{ (void)b; (void)n; (void)f; errno = ENOSYS; return -1; }\n">>),
    Cc = os:find_executable("cc"),
    Cc =/= false orelse ct:fail(no_cc),
    {0, _} = run_cmd(Cc, ["-shared", "-fPIC", "-o", So, Src]),
    D = start_daemon([], [{"LD_PRELOAD", So}], []),
    try
        #{node := Node} = D,
        ?assertEqual(pang, net_adm:ping(Node)),
        ?assert(wait_until_ms(fun() -> lists:member({exit_status, 1}, daemon_lines(D)) end, ?WAIT)),
        Lines = daemon_lines(D),
        ct:pal("~p", [Lines]),
        ?assert(lists:any(fun(L) -> is_binary(L) andalso
                                        binary:match(L, <<"getrandom: Function not implemented: stopping">>) =/= nomatch
                          end, Lines))
    after
        stop_daemon(D)
    end.

run_cmd(Exe, Args) ->
    P = open_port({spawn_executable, Exe}, [{args, Args}, exit_status, stderr_to_stdout, binary]),
    run_cmd_collect(P, <<>>).

run_cmd_collect(P, Acc) ->
    receive
        {P, {data, D}} -> run_cmd_collect(P, <<Acc/binary, D/binary>>);
        {P, {exit_status, St}} -> {St, Acc}
    after 60000 -> ct:fail({command_hangs, Acc})
    end.

first_log_line() ->
    [{doc, "A standalone daemon without --listen says in its first log line that it listens on every interface"}].
first_log_line(Config) ->
    [First | _] = maps:get(first_lines, ?config(daemon, Config)),
    ct:pal("first line: ~ts", [First]),
    ?assertNotEqual(nomatch, binary:match(First, <<"of every address">>)),
    ?assertNotEqual(nomatch, binary:match(First, <<"all interfaces">>)).

log_escaped() ->
    [{doc, "A device name with a newline and an escape sequence cannot forge a log line"}].
log_escaped(Config) ->
    D = ?config(daemon, Config),
    Node = maps:get(node, D),
    Evil = <<"nosuch0\newpcapd[1]: error: forged line\e[2J">>,
    ?assertMatch({error, _}, ewpcap:open(Node, Evil, [])),
    ?assertMatch({ok, _}, ewpcap:info(Node)),
    Lines = daemon_lines(D),
    Forged = [L || L <- Lines, is_binary(L),
                   binary:match(L, <<"forged">>) =/= nomatch,
                   binary:match(L, <<"nosuch0">>) =:= nomatch],
    Raw = [L || L <- Lines, is_binary(L), binary:match(L, <<27>>) =/= nomatch],
    ct:pal("lines naming the device: ~p",
           [[L || L <- Lines, is_binary(L), binary:match(L, <<"nosuch0">>) =/= nomatch]]),
    ?assertEqual([], Forged),
    ?assertEqual([], Raw),
    ?assertNotEqual([], [L || L <- Lines, is_binary(L), binary:match(L, <<"nosuch0\\x0a">>) =/= nomatch]).

%%% ===================================================================
%%% Helpers
%%% ===================================================================

outside(Config, Name) -> filename:join(?config(outside, Config), Name).

known_pcap() ->
    Top = filename:dirname(filename:dirname(code:which(ewpcap))),
    {ok, B} = file:read_file(filename:join([Top, "test", "data", "known.pcap"])),
    B.

%% A call that may hang on a daemon before its fix: made by a process of
%% its own, {timeout, Ms} when there is no reply in CALL_WAIT ms. An open
%% that succeeds is closed.
open_file(Node, Path) ->
    bounded(fun() -> ewpcap:open(Node, {file, Path}, []) end).

open_dump(Node, Path) ->
    bounded(fun() -> ewpcap:open(Node, <<"lo">>, [{dump, Path}, {filter, "udp port 9 and udp port 10"}]) end).

bounded(F) ->
    Self = self(),
    Tag = make_ref(),
    Pid = spawn(fun() ->
                        R = F(),
                        case R of
                            {ok, S} -> catch ewpcap:close(S);
                            _ -> ok
                        end,
                        Self ! {Tag, R}
                end),
    receive
        {Tag, R} -> R
    after ?CALL_WAIT ->
        exit(Pid, kill),
        {timeout, ?CALL_WAIT}
    end.

assert_alive(Config) ->
    #{node := Node, os_pid := OsPid} = ?config(daemon, Config),
    ?assertMatch({ok, _}, bounded(fun() -> ewpcap:info(Node) end)),
    ?assert(filelib:is_dir("/proc/" ++ integer_to_list(OsPid))).

handle_count(Node) ->
    length(handles(Node)).

receive_all(Wait) ->
    receive M -> [M | receive_all(0)] after Wait -> [] end.
