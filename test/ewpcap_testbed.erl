%%% @doc Test helper for the remote suites (ewpcap_remote) and
%%% ewpcap_tls_SUITE: a three-namespace test bed.
%%%
%%% ```
%%%   A (clients)            B (capture host)             C (traffic peer)
%%%   vethA 10.77.1.1/24 --- vethBA 10.77.1.2/24
%%%                          vethB  10.77.2.1/24 --- vethC 10.77.2.2/24
%%% '''
%%%
%%% The namespaces are named `ewp_ct_rt<id>_a|b|c' (the `ewp_ct_' prefix of
%%% ewpcap_netns, plus `rt' so that only this suite's leftovers are cleaned
%%% up by cleanup/0). Every process started here runs inside one of them
%%% (`ip netns exec'), so teardown/1 can end them all by pid (`ip netns
%%% pids') before deleting the namespaces: the epmd daemons that erl and
%%% ewpcapd start there included.
%%%
%%% Erlang nodes are driven from the (root namespace) Common Test node with
%%% OTP's `peer' over standard_io: the Common Test node never takes part in
%%% the namespaces' distribution. The object code of this module and of the
%%% suite is loaded into every peer, so funs of the suite run there (run/2,
%%% run/3). An agent (agent/1) is a long-lived process on a peer that runs
%%% funs for the suite: it owns handles and its mailbox holds their packets.
%%%
%%% The daemons in the bed are ewpcap_testbed_daemon's and tcpdump is
%%% ewpcap_tcpdump's: start_daemon/2 and tcpdump_start/4 here (and the
%%% functions beside them) call those modules, so that the suites have one
%%% module to call.
%%%
%%% Every external command and every wait is bounded in time.
%%% @end
-module(ewpcap_testbed).

-export([
    %% namespaces
    setup/0, teardown/1, cleanup/0, ns/2, ns_pids/1, ensure_names/1,
    addr/1, rss_kib/1,
    %% ewpcapd in a namespace
    start_daemon/2, stop_daemon/1, kill_daemon/1, signal_daemon/2, daemon_log/1, daemon_os_pid/1,
    daemon_node/1,
    %% peer nodes in a namespace
    start_node/3, stop_node/1, kill_node/1, signal_node/2, node_os_pid/1, node_name/1,
    run/2, run/3, agent/1, agent_start/0, agent_run/3,
    %% tcpdump in a namespace
    tcpdump_start/4, tcpdump_result/2, parse_pcap/1,
    %% resources to clean up after each test case
    janitor_start/0, janitor_stop/0, janitor_add/1, janitor_clean/0,
    %% misc
    poll/2, os_cmd/2, pid_alive/1, proc_status/1, object_code/1, sanitizer/0
]).

-include_lib("kernel/include/file.hrl").

-define(PREFIX, (ewpcap_netns:prefix() ++ "rt")).   % ewp_ct_rt, or $EWP_NS_PREFIX ++ "rt"
-define(CMD_TIMEOUT, 15000).
-define(STOP_TIMEOUT, 5000).
-define(BOOT_TIMEOUT, 30000).
-define(CALL_TIMEOUT, 20000).
-define(JANITOR, ewpcap_testbed_janitor).

%%% ===================================================================
%%% Namespaces
%%% ===================================================================

%% Interfaces and addresses of the bed.
-define(LINKS, [
    %% {namespace, interface, address/prefix}
    {a, "vethA", "10.77.1.1/24"},
    {b, "vethBA", "10.77.1.2/24"},
    {b, "vethB", "10.77.2.1/24"},
    {c, "vethC", "10.77.2.2/24"}
]).

%% @doc The IPv4 address of a role: `a', `b' (on the A side, the
%% distribution address), `b2' (B on the C side) or `c'.
addr(a) -> {10, 77, 1, 1};
addr(b) -> {10, 77, 1, 2};
addr(b2) -> {10, 77, 2, 1};
addr(c) -> {10, 77, 2, 2}.

%% @doc Creates the three namespaces, the two veth pairs, addresses, and
%% brings every link up (lo included). IPv6 is disabled inside them so
%% that no router solicitation or DAD packet is captured. Returns a map
%% `#{a => NsA, b => NsB, c => NsC}'; on failure everything made so far is
%% deleted and `{error, Reason}' returned.
-spec setup() -> {ok, map()} | {error, term()}.
setup() ->
    Id = ewpcap_netns:tag(),
    Bed = #{a => ?PREFIX ++ Id ++ "_a", b => ?PREFIX ++ Id ++ "_b", c => ?PREFIX ++ Id ++ "_c"},
    #{a := A, b := B, c := C} = Bed,
    Steps =
        [["netns", "add", NS] || NS <- [A, B, C]] ++
        [["-n", A, "link", "add", "vethA", "type", "veth", "peer", "name", "vethBA", "netns", B],
         ["-n", B, "link", "add", "vethB", "type", "veth", "peer", "name", "vethC", "netns", C]] ++
        [{sysctl, NS} || NS <- [A, B, C]] ++
        [["-n", maps:get(R, Bed), "addr", "add", Addr, "dev", If] || {R, If, Addr} <- ?LINKS] ++
        [["-n", maps:get(R, Bed), "link", "set", If, "up"] || {R, If, _} <- ?LINKS] ++
        [["-n", NS, "link", "set", "lo", "up"] || NS <- [A, B, C]],
    case run_steps(Steps) of
        ok ->
            try pins(Bed)
            catch Class:Reason:Stack ->
                teardown(Bed),
                erlang:raise(Class, Reason, Stack)
            end;
        {error, _} = Error ->
            teardown(Bed),
            Error
    end.

%% The namespaces by inode too: if someone deletes their names
%% (ewpcap_netns:cleanup/0 of a concurrent run), teardown/1 still finds the
%% processes inside them; and a process pinned in each, to give a deleted
%% name back (ensure_names/1).
pins(Bed) ->
    Inodes = maps:map(fun(_, NS) -> ns_inode(NS) end, Bed),
    Pins = maps:map(fun(_, NS) -> pin(NS) end, Bed),
    {ok, Bed#{inodes => Inodes, pins => Pins}}.

run_steps([]) ->
    ok;
run_steps([{sysctl, NS} | Rest]) ->
    % best effort: a kernel without IPv6 has nothing to disable
    _ = os_cmd("ip", ["netns", "exec", NS, "sysctl", "-q", "-w",
                      "net.ipv6.conf.all.disable_ipv6=1",
                      "net.ipv6.conf.default.disable_ipv6=1"]),
    run_steps(Rest);
run_steps([Args | Rest]) ->
    case os_cmd("ip", Args) of
        {0, _} -> run_steps(Rest);
        {Status, Out} -> {error, {ip, Args, Status, Out}}
    end.

%% @doc Ends every process inside the bed's namespaces (by pid, kill -9,
%% waiting for them to be gone) and deletes the namespaces. Returns the
%% pids that had to be killed.
-spec teardown(map() | [string()]) -> [integer()].
teardown(#{a := A, b := B, c := C} = Bed) ->
    Killed = lists:append([kill_inode_pids(I) || I <- maps:values(maps:get(inodes, Bed, #{}))]),
    Killed ++ teardown([A, B, C]);
teardown(Namespaces) when is_list(Namespaces) ->
    Existing = ewpcap_netns:list(),
    Mine = [NS || NS <- Namespaces, lists:member(NS, Existing)],
    Killed = lists:append([kill_ns_pids(NS) || NS <- Mine]),
    [ok = ewpcap_netns:delete(NS) || NS <- Mine],
    Killed.

%% @doc Deletes leftover namespaces of this suite (`ewp_ct_rt*' of a BEAM
%% that is gone, see ewpcap_netns:tag/0) after ending the processes inside
%% them. Returns their names.
-spec cleanup() -> [string()].
cleanup() ->
    Left = [NS || NS <- ewpcap_netns:list(), lists:prefix(?PREFIX, NS),
                  not ewpcap_netns:owner_alive(NS)],
    _ = teardown(Left),
    Left.

ns_inode(NS) ->
    {ok, #file_info{inode = Ino}} = file:read_file_info("/run/netns/" ++ NS),
    Ino.

%% The processes whose network namespace is Inode, killed (-9, bounded).
kill_inode_pids(Inode) ->
    kill_inode_pids(Inode, 20, []).

kill_inode_pids(Inode, Tries, Acc) ->
    case inode_pids(Inode) of
        [] ->
            lists:usort(Acc);
        Pids when Tries > 0 ->
            [_ = os_cmd("kill", ["-9", integer_to_list(P)]) || P <- Pids],
            timer:sleep(100),
            kill_inode_pids(Inode, Tries - 1, Pids ++ Acc);
        Pids ->
            erlang:error({processes_survive_in, Inode, Pids})
    end.

inode_pids(Inode) ->
    Want = "net:[" ++ integer_to_list(Inode) ++ "]",
    {ok, Entries} = file:list_dir("/proc"),
    [list_to_integer(E) || E <- Entries, lists:all(fun(Ch) -> Ch >= $0 andalso Ch =< $9 end, E),
                           file:read_link("/proc/" ++ E ++ "/ns/net") =:= {ok, Want},
                           pid_alive(list_to_integer(E))].

%% A `sleep 1800' inside NS, detached; its pid.
pin(NS) ->
    {0, _} = os_cmd("ip", ["netns", "exec", NS, "sh", "-c",
                           "sleep 1800 </dev/null >/dev/null 2>&1 &"]),
    [Pid] = ns_pids(NS),
    Pid.

%% @doc Gives the bed's namespaces their names back if someone deleted
%% them (`ip netns attach NAME PinPid'). Returns the names restored.
-spec ensure_names(map()) -> [string()].
ensure_names(#{pins := Pins} = Bed) ->
    Existing = ewpcap_netns:list(),
    [begin
         {0, _} = os_cmd("ip", ["netns", "attach", NS, integer_to_list(Pid)]),
         NS
     end || {Role, Pid} <- lists:sort(maps:to_list(Pins)),
            NS <- [ns(Bed, Role)],
            not lists:member(NS, Existing)].

%% @doc The namespace of a role.
ns(Bed, Role) ->
    maps:get(Role, Bed).

%% @doc The pids of the processes inside a namespace.
-spec ns_pids(string()) -> [integer()].
ns_pids(NS) ->
    case os_cmd("ip", ["netns", "pids", NS]) of
        {0, Out} -> [list_to_integer(P) || P <- string:lexemes(Out, "\n \t")];
        _ -> []
    end.

kill_ns_pids(NS) ->
    kill_ns_pids(NS, 20, []).

kill_ns_pids(NS, Tries, Acc) ->
    case ns_pids(NS) of
        [] ->
            lists:usort(Acc);
        Pids when Tries > 0 ->
            [_ = os_cmd("kill", ["-9", integer_to_list(P)]) || P <- Pids],
            timer:sleep(100),
            kill_ns_pids(NS, Tries - 1, Pids ++ Acc);
        Pids ->
            erlang:error({processes_survive_in, NS, Pids})
    end.

%%% ===================================================================
%%% ewpcapd inside a namespace
%%% ===================================================================

%% ewpcapd inside a namespace: ewpcap_testbed_daemon (see there).
start_daemon(Bed, Opts) -> ewpcap_testbed_daemon:start(Bed, Opts).
stop_daemon(D) -> ewpcap_testbed_daemon:stop(D).
kill_daemon(D) -> ewpcap_testbed_daemon:kill(D).
signal_daemon(D, Sig) -> ewpcap_testbed_daemon:signal(D, Sig).
daemon_log(D) -> ewpcap_testbed_daemon:log(D).
daemon_os_pid(D) -> ewpcap_testbed_daemon:os_pid(D).
daemon_node(D) -> ewpcap_testbed_daemon:node(D).

%%% ===================================================================
%%% Peer nodes
%%% ===================================================================

%% @doc Starts an Erlang node inside the namespace of Role with `peer'
%% over standard_io. Options: `name' (a string; absent: not distributed),
%% `host' (default the role's address), `cookie', `code' (default true:
%% `-pa' the ewpcap ebin), `args' (more), `ticktime' (default 4),
%% `janitor' (default true: stopped by janitor_clean/0). The object code
%% of this module and of the modules in `load' is loaded into it.
-spec start_node(map(), atom(), map()) -> {ok, map()}.
start_node(Bed, Role, Opts) ->
    NS = ns(Bed, Role),
    Erl = os:find_executable("erl"),
    Ebin = filename:dirname(filename:absname(code:which(ewpcap))),
    Tick = integer_to_list(maps:get(ticktime, Opts, 4)),
    Cookie = maps:get(cookie, Opts, "nocookie"),
    Args =
        ["-setcookie", Cookie, "-kernel", "net_ticktime", Tick, "-connect_all", "false",
         "-kernel", "logger_level", "critical"] ++
        case maps:get(code, Opts, true) of
            true -> ["-pa", Ebin];
            false -> []
        end ++ maps:get(args, Opts, []),
    Name =
        case maps:find(name, Opts) of
            {ok, N} -> #{name => N, longnames => true,
                         host => inet:ntoa(maps:get(host, Opts, addr(Role)))};
            error -> #{}
        end,
    PeerOpts = Name#{connection => standard_io,
                     exec => {os:find_executable("ip"), ["netns", "exec", NS, Erl]},
                     args => Args,
                     wait_boot => ?BOOT_TIMEOUT},
    {Pid, Node} =
        case peer:start(PeerOpts) of
            {ok, P, Nd} -> {P, Nd};
            {ok, P} -> {P, nonode@nohost}
        end,
    OsPid = list_to_integer(peer:call(Pid, os, getpid, [], ?CALL_TIMEOUT)),
    P0 = #{peer => Pid, node => Node, os_pid => OsPid, ns => NS},
    _ = maps:get(janitor, Opts, true) andalso janitor_add({node, P0}),
    [load(P0, M) || M <- [?MODULE | maps:get(load, Opts, [])]],
    {ok, P0}.

load(#{peer := Pid}, Mod) ->
    {Mod, Bin, File} = object_code(Mod),
    {module, Mod} = peer:call(Pid, code, load_binary, [Mod, File, Bin], ?CALL_TIMEOUT),
    ok.

%% The object code of the loaded Mod. The .beam files on disk may change
%% (a concurrent ct_run compiles test/ again): the first read, checked
%% against the loaded module's MD5 (funs sent to peers need the same
%% code), is kept for the rest of the run.
object_code(Mod) ->
    Key = {?MODULE, object_code, Mod, Mod:module_info(md5)},
    case persistent_term:get(Key, undefined) of
        undefined ->
            File = code:which(Mod),
            {ok, Bin} = file:read_file(File),
            {ok, {Mod, MD5}} = beam_lib:md5(Bin),
            case Mod:module_info(md5) of
                MD5 -> ok;
                _ -> erlang:error({beam_changed_on_disk, Mod, File})
            end,
            persistent_term:put(Key, {Mod, Bin, File}),
            {Mod, Bin, File};
        Code ->
            Code
    end.

node_name(#{node := Node}) -> Node.
node_os_pid(#{os_pid := OsPid}) -> OsPid.

%% @doc VmRSS of an OS process, in KiB.
-spec rss_kib(pos_integer()) -> non_neg_integer().
rss_kib(OsPid) ->
    {ok, B} = file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
    {match, [K]} = re:run(B, "VmRSS:\\s+(\\d+)", [{capture, all_but_first, list}]),
    list_to_integer(K).

%% @doc Stops a peer node; a node already gone is fine. Waits until its OS
%% process is gone (kill -9 after 5 s).
-spec stop_node(map()) -> ok.
stop_node(#{peer := Pid, os_pid := OsPid}) ->
    catch peer:stop(Pid),
    case poll(fun() -> not pid_alive(OsPid) end, ?STOP_TIMEOUT) of
        true -> ok;
        false -> kill_node(#{os_pid => OsPid})
    end.

%% @doc kill -9 of the peer's OS process; waits until it is gone.
-spec kill_node(map()) -> ok.
kill_node(#{os_pid := OsPid}) ->
    _ = os_cmd("kill", ["-9", integer_to_list(OsPid)]),
    true = poll(fun() -> not pid_alive(OsPid) end, ?STOP_TIMEOUT),
    ok.

%% @doc Sends a signal ("STOP", "CONT", ...) to the peer's OS process.
signal_node(#{os_pid := OsPid}, Sig) ->
    {0, _} = os_cmd("kill", ["-" ++ Sig, integer_to_list(OsPid)]),
    ok.

%% @doc Runs Fun() on the peer in a fresh process; returns its value or
%% raises its exception here.
run(#{peer := Pid}, Fun) ->
    peer:call(Pid, erlang, apply, [Fun, []], ?CALL_TIMEOUT).

%% @doc Runs Fun() inside the agent process Agent on the peer.
run(#{peer := Pid}, Agent, Fun) when is_pid(Agent) ->
    peer:call(Pid, ?MODULE, agent_run, [Agent, Fun, ?CALL_TIMEOUT - 2000], ?CALL_TIMEOUT).

%% @doc Starts an agent on the peer: a process, linked to nobody, that runs
%% funs sent by run/3 (one at a time) and otherwise leaves its mailbox to
%% them.
agent(#{peer := Pid}) ->
    peer:call(Pid, ?MODULE, agent_start, [], ?CALL_TIMEOUT).

%% @private On the peer.
agent_start() ->
    spawn(fun agent_loop/0).

agent_loop() ->
    receive
        {'$ewp_agent', From, Tag, Fun} ->
            Reply =
                try
                    {ok, Fun()}
                catch
                    Class:Reason:Stack -> {raise, Class, Reason, Stack}
                end,
            From ! {Tag, Reply},
            agent_loop()
    end.

%% @private On the peer: runs Fun in Agent and waits for it.
agent_run(Agent, Fun, Timeout) ->
    MRef = erlang:monitor(process, Agent),
    Agent ! {'$ewp_agent', self(), MRef, Fun},
    receive
        {MRef, {ok, Value}} ->
            erlang:demonitor(MRef, [flush]),
            Value;
        {MRef, {raise, Class, Reason, Stack}} ->
            erlang:demonitor(MRef, [flush]),
            erlang:raise(Class, Reason, Stack);
        {'DOWN', MRef, process, Agent, Reason} ->
            erlang:error({agent_down, Reason})
    after Timeout ->
        erlang:demonitor(MRef, [flush]),
        erlang:error(agent_timeout)
    end.

%%% ===================================================================
%%% tcpdump inside a namespace
%%% ===================================================================

%% tcpdump inside a namespace: ewpcap_tcpdump (see there).
tcpdump_start(NS, If, Count, Filter) -> ewpcap_tcpdump:start(NS, If, Count, Filter).
tcpdump_result(T, Timeout) -> ewpcap_tcpdump:result(T, Timeout).
parse_pcap(Bin) -> ewpcap_tcpdump:parse_pcap(Bin).

%%% ===================================================================
%%% The janitor: what a test case started, stopped in end_per_testcase
%%% ===================================================================

%% @doc Starts the janitor (not linked: Common Test runs init_per_suite in
%% a process of its own).
janitor_start() ->
    case whereis(?JANITOR) of
        undefined ->
            Pid = spawn(fun() -> janitor_loop([]) end),
            register(?JANITOR, Pid),
            ok;
        _ ->
            ok
    end.

janitor_stop() ->
    janitor_clean(),
    case whereis(?JANITOR) of
        undefined -> ok;
        Pid -> exit(Pid, kill), ok
    end.

janitor_add(Item) ->
    case whereis(?JANITOR) of
        undefined -> ok;
        Pid -> Pid ! {add, Item}, ok
    end.

%% @doc Stops every node and daemon started since the last clean (nodes
%% first, newest first). Returns what it stopped.
janitor_clean() ->
    case whereis(?JANITOR) of
        undefined ->
            [];
        Pid ->
            MRef = erlang:monitor(process, Pid),
            Pid ! {take, self(), MRef},
            Items =
                receive
                    {MRef, Is} -> Is;
                    {'DOWN', MRef, process, Pid, _} -> []
                after 5000 -> []
                end,
            erlang:demonitor(MRef, [flush]),
            Nodes = [N || {node, N} <- Items],
            Daemons = [D || {daemon, D} <- Items],
            [catch stop_node(N) || N <- Nodes],
            [catch stop_daemon(D) || D <- Daemons],
            Items
    end.

janitor_loop(Items) ->
    receive
        {add, Item} -> janitor_loop([Item | Items]);
        {take, From, Ref} -> From ! {Ref, Items}, janitor_loop([])
    end.

%%% ===================================================================
%%% Misc
%%% ===================================================================

%% @doc `false', or the sanitizer the daemons run under (`$EWP_SANITIZER':
%% "asan" or "memcheck", set by test/sanitize/ct-run). Their RSS is then no
%% measure of what ewpcapd keeps (ASan's quarantine holds freed memory,
%% valgrind its own): cases print it but do not assert bounds on it.
-spec sanitizer() -> false | string().
sanitizer() ->
    case os:getenv("EWP_SANITIZER") of
        "" -> false;
        S -> S
    end.

%% @doc Calls F every 50 ms until it returns true or Timeout ms passed.
poll(F, Timeout) ->
    Deadline = erlang:monotonic_time(millisecond) + Timeout,
    poll_until(F, Deadline).

poll_until(F, Deadline) ->
    case F() of
        true ->
            true;
        false ->
            case erlang:monotonic_time(millisecond) >= Deadline of
                true -> false;
                false -> timer:sleep(50), poll_until(F, Deadline)
            end
    end.

%% @doc Runs an executable (no shell), bounded by 15 s:
%% `{Status | timeout, Output}'.
os_cmd(Cmd, Args) ->
    ewpcap_netns:run(Cmd, Args, ?CMD_TIMEOUT).

pid_alive(OsPid) ->
    % a zombie counts as gone
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            case string:split(Stat, ") ", trailing) of
                [_, <<"Z", _/binary>>] -> false;
                _ -> true
            end;
        {error, _} ->
            false
    end.

%% @doc /proc/PID/status as a list of {Key, Value} binaries.
proc_status(OsPid) ->
    {ok, Bin} = read_proc("/proc/" ++ integer_to_list(OsPid) ++ "/status"),
    [list_to_tuple([string:trim(P) || P <- string:split(L, ":")])
     || L <- binary:split(Bin, <<"\n">>, [global, trim_all])].

%% /proc files have size 0: read_file works on them in OTP, but be safe.
read_proc(Path) ->
    case file:open(Path, [read, binary, raw]) of
        {ok, F} ->
            R = read_all(F, []),
            ok = file:close(F),
            {ok, R};
        Error ->
            Error
    end.

read_all(F, Acc) ->
    case file:read(F, 65536) of
        {ok, D} -> read_all(F, [D | Acc]);
        eof -> iolist_to_binary(lists:reverse(Acc))
    end.
