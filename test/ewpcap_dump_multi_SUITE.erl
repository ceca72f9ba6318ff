%%% @doc ewpcap_dump with several interfaces (ewpcap_dump_multi): one
%%% capture across hosts, merged in time order.
%%%
%%% Group `args' runs bin/ewpcap_dump with command lines that are refused
%%% before any daemon is reached (status 2, one line) or that name nodes
%%% that do not run (status 1, naming the node): which node each `-i'
%%% takes.
%%%
%%% Group `hosts' (root) makes three network namespaces as three hosts,
%%% each with a veth pair `ewpv0'/`ewpv1' and an ewpcapd of its own
%%% (`--netns'). Frames are written with ewpcap:write/2 on each host's
%%% `ewpv0' through its daemon, one host after the other, so that their
%%% global time order is the order they were sent in (one kernel clock);
%%% ewpcap_dump captures `ewpv1' on the three at once. Each frame's
%%% source MAC says which host sent it and its number
%%% (`02:00:00:00:HOST:N'). Namespaces are named after $EWP_NS_PREFIX
%%% (ewpcap_netns) and always deleted.
%%% @end
-module(ewpcap_dump_multi_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).

-import(ewpcap_dump_helpers, [dump/2, cmd/1, start/2, start_cmd/1, quote/1, wait_until/2,
                              wait_exit/2, stop/2, stop_proc/1, get_procs/0, lines/1]).

-define(RUN_MS, 60000).
-define(ETHERTYPE, 16#88B5).        % IEEE local experimental
-define(FILTER, ["ether", "proto", "0x88b5"]).
% a window far longer than any delivery delay on a loaded machine (the
% cases where every host sends are released when safe, long before)
-define(WINDOW, ["--merge-window", "5000"]).

suite() ->
    [{timetrap, {minutes, 5}}].

all() ->
    [{group, args}, {group, hosts}].

groups() ->
    [{args, [], [ambiguous_interface, duplicate_interface, several_need_pcapng,
                 node_of_each_interface, bad_interface_values]},
     % host_down_others_go_on kills the third host's daemon: last
     {hosts, [], [merged_pcapng_in_order, merged_text_prefixed, late_host_reordered,
                  late_beyond_window_counted, unreachable_among_several,
                  host_down_others_go_on]}].

init_per_suite(Config) ->
    Ebin = filename:dirname(code:which(ewpcap)),
    Dump = filename:join([filename:dirname(Ebin), "bin", "ewpcap_dump"]),
    case filelib:is_regular(Dump) of
        true -> [{dump, Dump} | Config];
        false -> {skip, "bin/ewpcap_dump not built (make)"}
    end.

end_per_suite(_Config) ->
    ok.

init_per_group(hosts, Config) ->
    _ = ewpcap_netns:cleanup(),
    case string:trim(os:cmd("id -u")) =:= "0" andalso ewpcap_netns:available() of
        false ->
            {skip, "three hosts need root and ip(8)"};
        true ->
            ok = ensure_distributed(),
            Hosts = [start_host() || _ <- [1, 2, 3]],
            [{hosts, Hosts} | Config]
    end;
init_per_group(_, Config) ->
    Config.

end_per_group(hosts, Config) ->
    _ = [stop_host(H) || H <- ?config(hosts, Config)],
    ok;
end_per_group(_, _Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    % a case that failed may leave a capture running: end it
    [stop_proc(P) || P <- get_procs()],
    erase(procs),
    ok.

%%% ===================================================================
%%% args
%%% ===================================================================

%% A bare -i DEV among -i NODE:DEV, with no -N: which node is meant?
ambiguous_interface(Config) ->
    {2, <<>>, Err} = dump(Config, ["-i", "a@h:lo", "-i", "eth0"]),
    ?assertEqual([<<"ewpcap_dump: -i eth0: which node? give every interface as NODE:DEV"
                    " (or -N NODE before it)">>], lines(Err)).

%% The same interface twice, however it is named.
duplicate_interface(Config) ->
    Twice = [<<"ewpcap_dump: interface a@h:lo given twice">>],
    {2, <<>>, E1} = dump(Config, ["-i", "a@h:lo", "-i", "b@h:lo", "-i", "a@h:lo"]),
    ?assertEqual(Twice, lines(E1)),
    {2, <<>>, E2} = dump(Config, ["-N", "a@h", "-i", "lo", "-i", "a@h:lo"]),
    ?assertEqual(Twice, lines(E2)),
    {2, <<>>, E3} = dump(Config, ["-i", "lo", "-i", "lo"]),
    ?assertEqual([<<"ewpcap_dump: interface lo given twice">>], lines(E3)).

%% Several interfaces into a pcap file: pcap has one link type and no
%% interface; refused, no file made. pcapng is accepted (the run then
%% fails to reach the nodes: status 1).
several_need_pcapng(Config) ->
    File = filename:join(?config(priv_dir, Config), "x.pcap"),
    {2, <<>>, Err} = dump(Config, ["-i", "a@h:lo", "-i", "b@h:lo", "-w", File]),
    ?assertEqual([<<"ewpcap_dump: several interfaces need pcapng (pcap has one link type"
                    " and no interface): -w FILE.pcapng or --pcapng">>], lines(Err)),
    ?assertNot(filelib:is_file(File)),
    {2, <<>>, _} = dump(Config, ["-i", "lo", "-i", "eth0", "-w", "-"]),
    {2, <<>>, _} = dump(Config, ["-i", "a@h:lo", "-i", "b@h:lo", "-r", File]),
    Host = host(),
    {1, <<>>, _} = dump(Config, ["-i", "ewp_h14_nx1@" ++ Host ++ ":lo", "-i", "ewp_h14_nx2@" ++ Host ++ ":lo",
                                 "--pcapng", "-w", File]).

%% Each -i takes the -N before it, else the first -N; -i NODE:DEV splits
%% at the last ':' (an IPv6 host); one -i with one -N, in either order,
%% is today's single capture. Seen through the node it tries first (none
%% runs: status 1 naming it).
node_of_each_interface(Config) ->
    Host = host(),
    A = "ewp_h14_nxa@" ++ Host,
    B = "ewp_h14_nxb@" ++ Host,
    Cannot = fun(N) -> [iolist_to_binary(["ewpcap_dump: cannot reach ", N,
                                          " (not running, or another cookie?)"])] end,
    lists:foreach(
      fun({Args, Node}) ->
              {1, <<>>, Err} = dump(Config, Args ++ ["-c", "1"]),
              ?assertEqual({Args, Cannot(Node)}, {Args, lines(Err)})
      end,
      [{["-i", "lo", "-N", A], A},
       {["-N", A, "-i", "lo"], A},
       {["-N", B, "-i", "lo", "-N", A, "-i", "eth0"], A},      % sorted: a before b
       {["-i", "lo", "-N", B, "-i", "x", "-i", A ++ ":y"], A},
       {["-i", B ++ ":lo"], B}]),
    % lo and x on B (x: the last -N before it, lo: the first -N)
    {2, <<>>, E1} = dump(Config, ["-i", "lo", "-N", B, "-N", A, "-i", "x", "-i", B ++ ":lo"]),
    ?assertEqual([iolist_to_binary(["ewpcap_dump: interface ", B, ":lo given twice"])], lines(E1)),
    {2, <<>>, E2} = dump(Config, ["-i", "lo", "-N", A, "-N", B]),
    ?assertEqual([iolist_to_binary(["ewpcap_dump: -N ", B, ": no -i for it"])], lines(E2)),
    % ewpcap@::1:lo is the node ewpcap@::1 (longnames), device lo
    {1, <<>>, E3} = dump(Config, ["-i", "ewp_h14_nx@::1:lo", "-i", "ewp_h14_nx@::1:eth0"]),
    ?assertMatch([<<"ewpcap_dump: cannot reach ewp_h14_nx@::1 ", _/binary>>], lines(E3)).

%% Malformed values of the new flags.
bad_interface_values(Config) ->
    lists:foreach(
      fun({Args, Msg}) ->
              {2, <<>>, Err} = dump(Config, Args),
              ?assertEqual({Args, [iolist_to_binary(["ewpcap_dump: ", Msg])]}, {Args, lines(Err)})
      end,
      [{["-i", "a@h:", "-i", "lo"], "invalid -i argument 'a@h:': expected NODE:DEV or DEV"},
       {["-i", "a@h", "-i", "lo"], "invalid -i argument 'a@h': expected NODE:DEV or DEV"},
       {["-i", "@h:lo"], "invalid -i argument '@h:lo': expected NODE:DEV or DEV"},
       {["-N", "a@h", "-N", "b@h"], "several -N need -i DEV after each (or -i NODE:DEV)"},
       {["--merge-window", "x"], "invalid --merge-window argument 'x': not a number"},
       {["--merge-window=-1"], "invalid --merge-window argument '-1': not in 0..3600000"}]).

%%% ===================================================================
%%% hosts
%%% ===================================================================

%% Ten rounds of one frame per host, in turn: the merged pcapng holds
%% the thirty frames in the order sent, each on its host's interface,
%% times never going back; three interfaces named NODE:ewpv1.
merged_pcapng_in_order(Config) ->
    Hosts = ?config(hosts, Config),
    File = filename:join(?config(priv_dir, Config), "merged.pcapng"),
    P = start(Config, ifaces(Hosts) ++ ?WINDOW ++ ["-c", "30", "-w", File | ?FILTER]),
    ok = wait_listening(P, 3),
    Sent = send_rounds(Hosts, 1, 10),
    {0, <<>>, Err} = wait_exit(P, ?RUN_MS),
    ct:pal("~ts", [Err]),
    Got = tshark_fields(File, ["frame.interface_name", "eth.src", "frame.time_epoch"]),
    ?assertEqual(Sent, [{Name, Src} || [Name, Src, _] <- Got]),
    Times = [binary_to_float(T) || [_, _, T] <- Got],
    ?assertEqual(Times, lists:sort(Times)),
    {0, Info, _} = cmd(["capinfos", "-I", File]),
    ?assertEqual(3, count(Info, <<"Name = ">>)),
    [?assertNotEqual(nomatch, binary:match(Info, <<"Name = ", (iface(H))/binary>>)) || H <- Hosts],
    [?assertNotEqual(nomatch, binary:match(Err, <<(iface(H))/binary, " 10 packets captured">>))
     || H <- Hosts],
    ?assertNotEqual(nomatch, binary:match(Err, <<"\n30 packets captured\n">>)).

%% Text: each line after its interface, in the order sent; -c counts
%% the packets of all.
merged_text_prefixed(Config) ->
    Hosts = ?config(hosts, Config),
    P = start(Config, ifaces(Hosts) ++ ?WINDOW ++ ["-n", "-e", "-c", "12" | ?FILTER]),
    ok = wait_listening(P, 3),
    Sent = send_rounds(Hosts, 1, 5),
    {0, Out, _Err} = wait_exit(P, ?RUN_MS),
    Names = [iface(H) || H <- Hosts],
    % every line (the hex dump's too) after its interface
    Split = [binary:split(L, <<" ">>, [global]) || L <- lines(Out)],
    [?assert(lists:member(Name, Names)) || [Name | _] <- Split],
    Got = [{Name, Src} || [Name, _Time, <<"02:00:00:00:", _/binary>> = Src | _] <- Split],
    ?assertEqual(lists:sublist(Sent, 12), Got).

%% The third host's daemon killed mid-capture: the other two go on; the
%% loss is said on stderr at once, and in the file on the next packet
%% (frame.comment) and the interface's statistics; every frame sent is
%% in the file; status 1.
host_down_others_go_on(Config) ->
    [H1, H2, H3] = Hosts = ?config(hosts, Config),
    File = filename:join(?config(priv_dir, Config), "down.pcapng"),
    P = start(Config, ifaces(Hosts) ++ ["-U", "-w", File | ?FILTER]),
    ok = wait_listening(P, 3),
    Before = send_rounds(Hosts, 1, 5),
    ok = wait_file(File, 15),                        % held ones are written on the loss
    os:cmd("kill -KILL " ++ integer_to_list(maps:get(os_pid, H3))),
    Lost = <<(iface(H3))/binary, ": capture lost at ">>,
    ok = wait_until(fun() -> binary:match(read(maps:get(err, P)), Lost) =/= nomatch end, 20000),
    After = send_rounds([H1, H2], 6, 10),
    ok = wait_file(File, 15 + 10),
    {1, <<>>, Err} = stop(P, "TERM"),
    ct:pal("~ts", [Err]),
    [LostLine] = [L || L <- lines(Err), binary:match(L, Lost) =/= nomatch],
    {match, [Said]} = re:run(LostLine, <<"^ewpcap_dump: (.*: capture lost at \\S+: ewpcapd \\S+ is down"
                                         " \\(nodedown\\); 5 packets captured); the other"
                                         " interfaces go on$">>, [{capture, all_but_first, binary}]),
    Got = tshark_fields(File, ["frame.interface_name", "eth.src", "frame.comment"]),
    ?assertEqual(Before ++ After, [{N, S} || [N, S, _] <- Got]),
    Comments = [{N, S, C} || [N, S, C] <- Got, C =/= <<>>],
    ?assertMatch([{_, _, _}], Comments),
    [{_, CSrc, Comment}] = Comments,
    ?assertEqual(Said, Comment),
    % the comment is on the first packet after the loss
    ?assertEqual(hd(After), lists:keyfind(CSrc, 2, After)),
    [?assertNotEqual(nomatch, binary:match(Err, <<(iface(H))/binary, " 10 packets captured">>))
     || H <- [H1, H2]],
    ?assertNotEqual(nomatch, binary:match(Err, <<(iface(H3))/binary, " lost: ewpcapd">>)),
    % and the third interface's statistics block (id 2) carries it, with
    % the count written (isb_usrdeliv); none of tshark and capinfos shows it
    {ok, Bin} = file:read_file(File),
    Isbs = [Opts || {5, <<2:32/little, _:64, Opts/binary>>} <- blocks(Bin)],
    ?assertMatch([_], Isbs),
    [IsbOpts] = Isbs,
    ?assertEqual(Said, proplists:get_value(1, options(IsbOpts))),
    ?assertEqual(<<5:64/little>>, proplists:get_value(8, options(IsbOpts))).

%% pcapng blocks {Type, Body} (little-endian: this machine's order, as
%% ewpcap_pcapng writes), and the options of a body.
blocks(<<Type:32/little, Len:32/little, Rest/binary>>) ->
    BodyLen = Len - 12,
    <<Body:BodyLen/binary, Len:32/little, More/binary>> = Rest,
    [{Type, Body} | blocks(More)];
blocks(<<>>) ->
    [].

options(<<0:16, 0:16, _/binary>>) ->
    [];
options(<<Code:16/little, Len:16/little, Rest/binary>>) ->
    Pad = (4 - Len rem 4) rem 4,
    <<Value:Len/binary, _:Pad/binary, More/binary>> = Rest,
    [{Code, Value} | options(More)];
options(<<>>) ->
    [].

%% The first host's daemon stopped (SIGSTOP) while each host sends a
%% burst of UDP datagrams in turn from inside its namespace: the first
%% host's packets are stamped first but delivered last, after the
%% others'; within the window they are put back in their place.
late_host_reordered(Config) ->
    [H1 | _] = Hosts = ?config(hosts, Config),
    File = filename:join(?config(priv_dir, Config), "late.pcapng"),
    P = start(Config, ifaces(Hosts) ++ ?WINDOW ++ ["-c", "15", "-w", File,
                                             "udp", "portrange", "7000-7999"]),
    ok = wait_listening(P, 3),
    Pid = integer_to_list(maps:get(os_pid, H1)),
    os:cmd("kill -STOP " ++ Pid),
    Sent = try
               lists:append([udp_burst(H, No, 5) || {No, H} <- lists:enumerate(Hosts)])
           after
               timer:sleep(300),
               os:cmd("kill -CONT " ++ Pid)
           end,
    {0, <<>>, Err} = wait_exit(P, ?RUN_MS),
    ct:pal("~ts", [Err]),
    Got = tshark_fields(File, ["frame.interface_name", "udp.dstport", "frame.time_epoch"]),
    ?assertEqual(Sent, [{Name, Port} || [Name, Port, _] <- Got]),
    Times = [binary_to_float(T) || [_, _, T] <- Got],
    ?assertEqual(Times, lists:sort(Times)),
    ?assertEqual(nomatch, binary:match(Err, <<"out of time order">>)).

%% The same with the daemon stopped for longer than the window: the
%% others' packets are written at the window, the stopped host's come
%% after their place has gone by: still written, all of them, and
%% counted at the end.
late_beyond_window_counted(Config) ->
    [H1 | _] = Hosts = ?config(hosts, Config),
    File = filename:join(?config(priv_dir, Config), "later.pcapng"),
    P = start(Config, ifaces(Hosts) ++ ["--merge-window", "100", "-c", "15", "-w", File,
                                             "udp", "portrange", "7000-7999"]),
    ok = wait_listening(P, 3),
    Pid = integer_to_list(maps:get(os_pid, H1)),
    os:cmd("kill -STOP " ++ Pid),
    {First, Rest} = try
                        lists:split(5, lists:append([udp_burst(H, No, 5)
                                                     || {No, H} <- lists:enumerate(Hosts)]))
                    after
                        timer:sleep(1500),
                        os:cmd("kill -CONT " ++ Pid)
                    end,
    {0, <<>>, Err} = wait_exit(P, ?RUN_MS),
    ct:pal("~ts", [Err]),
    Got = [{Name, Port} || [Name, Port] <- tshark_fields(File, ["frame.interface_name", "udp.dstport"])],
    ?assertEqual(Rest ++ First, Got),
    ?assertNotEqual(nomatch, binary:match(Err, <<"\n5 packets out of time order (later than the"
                                                  " merge window)\n">>)).

%% N datagrams sent inside the host's namespace to a neighbour on ewpv0
%% (a static entry: no ARP), seen on ewpv1; the port says host and number.
udp_burst(#{ns := NS} = H, HostNo, N) ->
    Ports = [integer_to_list(7000 + HostNo * 100 + I) || I <- lists:seq(1, N)],
    {0, _, _} = cmd(["ip", "netns", "exec", NS, "bash", "-c",
                     "for p in " ++ lists:join(" ", Ports) ++ "; do echo x > /dev/udp/10.77.0.9/$p; done"]),
    [{iface(H), list_to_binary(Port)} || Port <- Ports].

%% One node among several does not run: the run stops before capturing,
%% naming it, status 1.
unreachable_among_several(Config) ->
    [H1 | _] = ?config(hosts, Config),
    Bad = "ewp_h14_nobody@" ++ host(),
    {1, <<>>, Err} = dump(Config, ["-i", binary_to_list(iface(H1)), "-i", Bad ++ ":ewpv1",
                                   "--cookie", atom_to_list(erlang:get_cookie()), "-c", "1"]),
    ?assertEqual([iolist_to_binary(["ewpcap_dump: cannot reach ", Bad,
                                    " (not running, or another cookie?)"])], lines(Err)).

%%% ===================================================================
%%% Hosts: a namespace, its veth pair, its ewpcapd, a handle to write
%%% ===================================================================

ensure_distributed() ->
    case node() of
        nonode@nohost -> {error, not_distributed};
        _ -> ok
    end.

start_host() ->
    {ok, NS} = ewpcap_netns:create(),
    {0, _} = ewpcap_netns:run("ip", ["-n", NS, "addr", "add", "10.77.0.1/24", "dev", "ewpv0"]),
    {0, _} = ewpcap_netns:run("ip", ["-n", NS, "neigh", "add", "10.77.0.9", "lladdr",
                                     "02:00:00:00:09:09", "dev", "ewpv0"]),
    Exe = ewpcap_daemon:executable(),
    Name = "ewp_h14_ns_" ++ integer_to_list(erlang:unique_integer([positive])) ++ "_"
        ++ os:getpid(),
    Cookie = atom_to_list(erlang:get_cookie()),
    Parent = self(),
    Holder = spawn(fun() ->
                           Port = open_port({spawn_executable, Exe},
                                            [{args, ["-sname", Name, "--netns", NS, "--stdin"]},
                                             {env, [{"EWPCAPD_COOKIE", Cookie}]},
                                             {line, 1024}, binary, exit_status, use_stdio,
                                             stderr_to_stdout]),
                           {os_pid, OsPid} = erlang:port_info(Port, os_pid),
                           Parent ! {self(), ready(Port), OsPid},
                           hold(Port)
                   end),
    receive
        {Holder, {ok, Node}, OsPid} ->
            pong = net_adm:ping(Node),
            #{ns => NS, node => Node, holder => Holder, os_pid => OsPid};
        {Holder, Error, _} ->
            _ = ewpcap_netns:delete(NS),
            ct:fail({ns_daemon, Error})
    after 30000 ->
        _ = ewpcap_netns:delete(NS),
        ct:fail(ns_daemon_timeout)
    end.

ready(Port) ->
    receive
        {Port, {data, {eol, <<"ready ", Node/binary>>}}} -> {ok, binary_to_atom(Node)};
        {Port, {data, _}} -> ready(Port);
        {Port, {exit_status, S}} -> {error, {exit, S}}
    after 20000 -> {error, timeout}
    end.

hold(Port) ->
    receive
        {stop, From} ->
            catch port_close(Port),
            From ! {self(), stopped};
        {Port, {exit_status, _}} ->
            receive {stop, From} -> From ! {self(), stopped} end;
        {Port, {data, _}} ->
            hold(Port)
    end.

stop_host(#{ns := NS, holder := Holder}) ->
    Holder ! {stop, self()},
    receive {Holder, stopped} -> ok after 5000 -> exit(Holder, kill) end,
    _ = ewpcap_netns:delete(NS),
    ok.

iface(#{node := Node}) ->
    <<(atom_to_binary(Node))/binary, ":ewpv1">>.

ifaces(Hosts) ->
    ["--cookie", atom_to_list(erlang:get_cookie())
     | lists:append([["-i", binary_to_list(iface(H))] || H <- Hosts])].

%% Rounds From..To of one frame per host, in turn, each written when the
%% one before has been: the order sent is the time order. Returns
%% [{Interface, SourceMac}] in that order.
send_rounds(Hosts, From, To) ->
    lists:append(
      [[begin
            Src = <<2, 0, 0, 0, HostNo, N>>,
            Frame = <<255, 255, 255, 255, 255, 255, Src/binary, ?ETHERTYPE:16, 0:(46 * 8)>>,
            ok = ewpcap:write(writer(H), Frame),
            timer:sleep(2),
            {iface(H), mac(Src)}
        end || {HostNo, H} <- lists:enumerate(Hosts)]
       || N <- lists:seq(From, To)]).

%% A handle on the host's ewpv0 to write with, opened by the case's
%% process (a handle ends with the process that opened it).
writer(#{node := Node}) ->
    case get({writer, Node}) of
        undefined ->
            {ok, W} = ewpcap:open(Node, <<"ewpv0">>, [{filter, "ether proto 0x1234"}]),
            put({writer, Node}, W),
            W;
        W ->
            W
    end.

mac(Bin) ->
    iolist_to_binary(lists:join(":", [io_lib:format("~2.16.0b", [B]) || <<B>> <= Bin])).

%%% ===================================================================
%%% Running ewpcap_dump and tools
%%% ===================================================================

host() ->
    [_, H] = string:split(atom_to_list(node()), "@"),
    H.

wait_listening(#{err := Err}, N) ->
    wait_until(fun() -> count(read(Err), <<"listening on">>) >= N end, 30000).

%% The pcapng holds N packets (tshark reads it).
wait_file(File, N) ->
    wait_until(fun() ->
                       case cmd(["capinfos", "-c", "-M", File]) of
                           {0, Out, _} -> re:run(Out, <<"Number of packets:\\s+", (integer_to_binary(N))/binary, "\\b">>) =/= nomatch;
                           _ -> false
                       end
               end, 20000).

tshark_fields(File, Fields) ->
    {0, Out, _} = cmd(["tshark", "-r", File, "-T", "fields", "-E", "separator=/t"
                       | lists:append([["-e", F] || F <- Fields])]),
    [binary:split(L, <<"\t">>, [global]) || L <- lines(Out)].

read(File) ->
    case file:read_file(File) of
        {ok, B} -> B;
        {error, _} -> <<>>
    end.

count(Bin, Pat) ->
    length(binary:matches(Bin, Pat)).
