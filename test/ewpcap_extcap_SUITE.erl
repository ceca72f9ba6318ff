%%% @doc Tests of bin/ewpcap_extcap, the Wireshark extcap, as Wireshark
%%% runs it: through tshark, with the extcap installed (a link, as
%%% `make install' makes) in tshark's personal extcap folder under a
%%% temporary HOME (never the system's folder), and a configuration file
%%% of its own ($EWPCAP_EXTCAP_CONF).
%%%
%%% The suite starts an ewpcapd (-sname, its own cookie, -v: its log says
%%% how each handle was closed) and captures on lo through it: UDP
%%% datagrams to a port chosen here. Also run directly: the extcap's
%%% answers to Wireshark's calls, and the end of a capture by SIGTERM,
%%% SIGINT and by the reader of the FIFO going away (EPIPE), each with the daemon's
%%% handle closed by the extcap (`close lo (closed; ...)' in the log, not
%%% `owner node disconnected').
%%% @end
-module(ewpcap_extcap_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-compile([export_all, nowarn_export_all]).

-import(ewpcap_dump_helpers, [root/0, get_procs/0, quote/1, stop_proc/1, wait_until/2,
                              udp_receiver/0]).

-define(RUN_MS, 120000).      % the most one tshark or extcap run may take (a hang guard)
-define(READY_MS, 20000).

%%% ===================================================================
%%% Common Test callbacks
%%% ===================================================================

suite() ->
    [{timetrap, {minutes, 10}}].

all() ->
    [contract_lines, config_file_errors, tshark_lists_interfaces, tshark_captures,
     tshark_configured_interface, tshark_bad_cookie, tshark_bad_node,
     sigterm_closes_capture, reader_gone_closes_capture].

init_per_suite(Config) ->
    Extcap = extcap_path(),
    case {filelib:is_regular(Extcap), os:find_executable("tshark"), root()} of
        {false, _, _} -> {skip, "bin/ewpcap_extcap not built (make)"};
        {_, false, _} -> {skip, "tshark not installed"};
        {_, _, false} -> {skip, "captures need root"};
        _ -> setup(Config, Extcap)
    end.

setup(Config, Extcap) ->
    Dir = ?config(priv_dir, Config),
    Home = filename:join(Dir, "home"),
    ok = filelib:ensure_dir(filename:join(Home, "x")),
    Env = [{"HOME", Home}, {"XDG_CONFIG_HOME", filename:join(Home, ".config")}],
    ExtcapDir = personal_extcap_dir(Env),
    ok = filelib:ensure_dir(filename:join(ExtcapDir, "x")),
    ok = file:make_symlink(Extcap, filename:join(ExtcapDir, "ewpcap_extcap")),
    {ok, Holder, Node, Cookie} = start_daemon(),
    CookieFile = filename:join(Dir, "cookie"),
    ok = file:write_file(CookieFile, [Cookie, "\n"]),
    BadCookieFile = filename:join(Dir, "bad_cookie"),
    ok = file:write_file(BadCookieFile, "not-the-cookie\n"),
    Conf = filename:join(Dir, "extcap.conf"),
    ok = file:write_file(Conf, io_lib:format("{interface, ~tp, \"lo\", [{display, \"ct lo\"}, "
                                             "{cookie_file, ~tp}]}.~n", [Node, CookieFile])),
    [{extcap, Extcap}, {env, [{"EWPCAP_EXTCAP_CONF", Conf} | Env]}, {daemon, Holder},
     {node, Node}, {cookie_file, CookieFile}, {bad_cookie_file, BadCookieFile}, {conf, Conf}
     | Config].

end_per_suite(Config) ->
    case ?config(daemon, Config) of
        undefined -> ok;
        Holder -> stop_daemon(Holder)
    end.

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, Config) ->
    [stop_proc(P) || P <- get_procs()],
    erase(procs),
    Config.

%%% ===================================================================
%%% Cases
%%% ===================================================================

%% The extcap's answers, line by line, as Wireshark parses them.
contract_lines(Config) ->
    Node = atom_to_list(?config(node, Config)),
    Conf = "ewpcap:" ++ Node ++ ":lo",
    {0, Ifs, <<>>} = extcap(Config, ["--extcap-interfaces", "--extcap-version=4.0"]),
    [Head | IfLines] = lines(Ifs),
    {match, _} = re:run(Head, "^extcap \\{version=[0-9.]+\\}\\{help=file://[^}]+/README.md\\}$"),
    ?assertEqual([<<"interface {value=ewpcap}{display=ewpcap: remote capture through ewpcapd}">>,
                  iolist_to_binary(["interface {value=", Conf, "}{display=ct lo}"])], IfLines),
    {0, Vsn, _} = extcap(Config, ["--extcap-version"]),
    ?assertEqual([Head], lines(Vsn)),
    [begin
         {0, Dlts, _} = extcap(Config, ["--extcap-interface", I, "--extcap-dlts"]),
         ?assertEqual([<<"dlt {number=147}{name=ewpcap}{display=Remote capture dependent DLT}">>],
                      lines(Dlts))
     end || I <- ["ewpcap", Conf]],
    % every argument numbered from 0, with a call, a display and a type
    Calls = fun(I) ->
                    {0, Out, _} = extcap(Config, ["--extcap-interface", I, "--extcap-config"]),
                    Ls = lines(Out),
                    [begin
                         {match, [Num, Call]} =
                             re:run(L, "^arg \\{number=([0-9]+)\\}\\{call=(--[a-z-]+)\\}\\{display=[^}]+\\}"
                                       "\\{type=(string|password|fileselect|integer|boolflag)\\}",
                                    [{capture, [1, 2], list}]),
                         ?assertEqual(N, list_to_integer(Num)),
                         {Call, L}
                     end || {N, L} <- lists:zip(lists:seq(0, length(Ls) - 1), Ls)]
            end,
    Generic = Calls("ewpcap"),
    ?assertEqual(["--node", "--device", "--cookie", "--cookie-file", "--tls-optfile", "--snaplen",
                  "--filter", "--no-promisc"], [C || {C, _} <- Generic]),
    % the file's entry: node and device fixed, its cookie file the default
    Entry = Calls(Conf),
    ?assertEqual(["--cookie", "--cookie-file", "--tls-optfile", "--snaplen", "--filter",
                  "--no-promisc"], [C || {C, _} <- Entry]),
    {_, CookieLine} = lists:keyfind("--cookie-file", 1, Entry),
    ?assertNotEqual(nomatch, binary:match(CookieLine, list_to_binary(
                                                         "{default=" ++ ?config(cookie_file, Config) ++ "}"))),
    % bad calls: status 2, one line
    {2, <<>>, E1} = extcap(Config, ["--extcap-interface", "nosuch", "--extcap-dlts"]),
    ?assertEqual([<<"ewpcap_extcap: no interface nosuch (see ewpcap_extcap --extcap-interfaces)">>],
                 lines(E1)),
    {2, <<>>, E2} = extcap(Config, ["--bogus"]),
    ?assertEqual([<<"ewpcap_extcap: unknown option --bogus (see ewpcap_extcap --help)">>], lines(E2)),
    {2, <<>>, E3} = extcap(Config, ["--extcap-interface", "ewpcap", "--capture"]),
    ?assertEqual([<<"ewpcap_extcap: --capture needs --fifo PATH">>], lines(E3)).

%% A bad configuration file: the generic interface is still listed and
%% the error said; capturing on an interface of the file says it too.
config_file_errors(Config) ->
    Dir = ?config(priv_dir, Config),
    Cases = [{"{interface, nonode, \"lo\"}.\n", "not NAME@HOST"},
             {"{interface, 'a@b', \"lo\", [{snaplen, 0}]}.\n", "bad option {snaplen,"},
             {"{interface, 'a@b', \"lo\"}.\n{interface, 'a@b', \"lo\"}.\n", "ewpcap:a@b:lo is listed twice"},
             {"{interface, 'a@b', \"lo\"\n", "syntax error"}],
    lists:foreach(
      fun({Text, Why}) ->
              File = filename:join(Dir, "bad.conf"),
              ok = file:write_file(File, Text),
              Env = lists:keystore("EWPCAP_EXTCAP_CONF", 1, ?config(env, Config),
                                   {"EWPCAP_EXTCAP_CONF", File}),
              {0, Out, Err} = run([?config(extcap, Config), "--extcap-interfaces"], Env),
              ?assertMatch([_, <<"interface {value=ewpcap}", _/binary>>], lines(Out)),
              [ErrLine] = lines(Err),
              ct:pal("~ts", [ErrLine]),
              ?assertNotEqual(nomatch, binary:match(ErrLine, list_to_binary(File))),
              ?assertNotEqual(nomatch, binary:match(ErrLine, list_to_binary(Why))),
              {1, <<>>, Err2} = run([?config(extcap, Config), "--extcap-interface", "ewpcap:a@b:lo",
                                     "--extcap-config"], Env),
              ?assertEqual(lines(Err), lines(Err2))
      end, Cases).

%% tshark -D lists the generic interface and the file's.
tshark_lists_interfaces(Config) ->
    Node = atom_to_list(?config(node, Config)),
    {0, Out, _} = tshark(Config, ["-D"]),
    Names = [N || L <- lines(Out), [_, N] <- [binary:split(L, <<". ">>)]],
    ct:pal("~p", [Names]),
    ?assert(lists:member(<<"ewpcap (ewpcap: remote capture through ewpcapd)">>, Names)),
    ?assert(lists:member(iolist_to_binary(["ewpcap:", Node, ":lo (ct lo)"]), Names)).

%% tshark -i ewpcap -o extcap.ewpcap.ARG:VALUE -c 5 -w: five datagrams
%% through the suite's daemon; the daemon's handle closed by the extcap.
tshark_captures(Config) ->
    Node = atom_to_list(?config(node, Config)),
    capture_5(Config, "ewpcap",
              ["-o", "extcap.ewpcap.node:" ++ Node,
               "-o", "extcap.ewpcap.cookiefile:" ++ ?config(cookie_file, Config),
               "-o", "extcap.ewpcap.device:lo", "-o", "extcap.ewpcap.snaplen:1600"]).

%% The file's interface needs no argument at all.
tshark_configured_interface(Config) ->
    capture_5(Config, "ewpcap:" ++ atom_to_list(?config(node, Config)) ++ ":lo", []).

capture_5(Config, Iface, Prefs) ->
    {R, Port} = udp_receiver(),
    Pcap = filename:join(?config(priv_dir, Config), "tshark-" ++ integer_to_list(Port) ++ ".pcap"),
    Closed0 = closes(Config),
    Sender = sender(Port),
    Result = tshark(Config, ["-i", Iface | Prefs] ++ ["-f", "udp dst port " ++ integer_to_list(Port),
                                                      "-c", "5", "-F", "pcap", "-w", Pcap]),
    Sender ! stop,
    gen_udp:close(R),
    {0, _, Err} = Result,
    ct:pal("~ts", [Err]),
    {ok, Dlt, _, Recs} = ewpcap_pcap_file:read_file(Pcap),
    ?assertEqual(1, Dlt),   % lo is Ethernet
    ?assertEqual(5, length(Recs)),
    [?assertMatch(<<_:12/binary, 8, 0, _:20/binary, _:16, Port:16, _:32, "ewpcap_extcap">>, P)
     || {_, _, P} <- Recs],
    ok = wait_until(fun() -> closes(Config) > Closed0 end, ?READY_MS).

%% A wrong cookie: tshark fails with the extcap's line, in bounded time
%% (dumpcap, waiting on the FIFO, is released).
tshark_bad_cookie(Config) ->
    Node = atom_to_list(?config(node, Config)),
    {S, _, Err} = tshark(Config, ["-i", "ewpcap", "-o", "extcap.ewpcap.node:" ++ Node,
                                  "-o", "extcap.ewpcap.cookiefile:" ++ ?config(bad_cookie_file, Config),
                                  "-c", "1", "-w", filename:join(?config(priv_dir, Config), "bad.pcap")]),
    ct:pal("~p~n~ts", [S, Err]),
    ?assertNotEqual(0, S),
    ?assertNotEqual(nomatch, binary:match(Err, iolist_to_binary(
        ["Error by extcap pipe: ewpcap_extcap: cannot reach ", Node, " (not running, or another cookie?)"]))).

%% A node that is not NAME@HOST, and one that does not run.
tshark_bad_node(Config) ->
    Out = filename:join(?config(priv_dir, Config), "bad.pcap"),
    {S1, _, E1} = tshark(Config, ["-i", "ewpcap", "-o", "extcap.ewpcap.node:nohost", "-c", "1", "-w", Out]),
    ?assertNotEqual(0, S1),
    ?assertNotEqual(nomatch, binary:match(E1, <<"ewpcap_extcap: invalid --node 'nohost': expected NAME@HOST">>)),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Gone = "ewp_extcap_nosuch@" ++ Host,
    {S2, _, E2} = tshark(Config, ["-i", "ewpcap", "-o", "extcap.ewpcap.node:" ++ Gone,
                                  "-o", "extcap.ewpcap.cookiefile:" ++ ?config(cookie_file, Config),
                                  "-c", "1", "-w", Out]),
    ?assertNotEqual(0, S2),
    ?assertNotEqual(nomatch, binary:match(E2, list_to_binary("ewpcap_extcap: cannot reach " ++ Gone))).

%% SIGTERM, as Wireshark stops a capture, and SIGINT (Ctrl-C when run by
%% hand): status 0, a valid savefile in the FIFO, the daemon's handle
%% closed by the extcap.
sigterm_closes_capture(Config) ->
    lists:foreach(
      fun(Sig) ->
              {Ext, Reader, Out, Sender} = direct_capture(Config),
              Closed0 = closes(Config),
              signal(Ext, Sig),
              ?assertMatch({Sig, 0}, {Sig, element(1, wait_exit(Ext, ?RUN_MS))}),
              Sender ! stop,
              ok = wait_until(fun() -> closes(Config) > Closed0 end, ?READY_MS),
              _ = wait_exit(Reader, ?RUN_MS),
              {ok, 1, _, [_ | _]} = ewpcap_pcap_file:read_file(Out)
      end, ["TERM", "INT"]).

%% The reader closes the FIFO (what SIGPIPE means for a C extcap): the
%% next write fails, the extcap closes the handle and exits 0.
reader_gone_closes_capture(Config) ->
    {Ext, Reader, _Out, Sender} = direct_capture(Config),
    Closed0 = closes(Config),
    stop_proc(Reader),
    {0, _, _} = wait_exit(Ext, ?RUN_MS),
    Sender ! stop,
    ok = wait_until(fun() -> closes(Config) > Closed0 end, ?READY_MS).

%% The extcap run as Wireshark runs it, into a FIFO read by cat; returns
%% once a packet has come through.
direct_capture(Config) ->
    Dir = ?config(priv_dir, Config),
    N = integer_to_list(erlang:unique_integer([positive])),
    Fifo = filename:join(Dir, "fifo" ++ N),
    Out = filename:join(Dir, "fifo" ++ N ++ ".pcap"),
    {0, _, _} = run(["mkfifo", Fifo], []),
    Reader = start(["cat", Fifo], [], Out),
    {_R, Port} = udp_receiver(),
    Ext = start([?config(extcap, Config), "--capture", "--extcap-interface", "ewpcap", "--fifo", Fifo,
                 "--node", atom_to_list(?config(node, Config)),
                 "--cookie-file", ?config(cookie_file, Config), "--device", "lo",
                 "--extcap-capture-filter", "udp dst port " ++ integer_to_list(Port)],
                ?config(env, Config), undefined),
    Sender = sender(Port),
    ok = wait_until(fun() -> filelib:file_size(Out) > 24 end, ?RUN_MS),
    {Ext, Reader, Out, Sender}.

%%% ===================================================================
%%% The daemon
%%% ===================================================================

%% ewpcapd -sname ewp_extcap_ct_<ospid>_<n> -v --stdin, its cookie in the
%% environment, held by a process that keeps its log lines.
start_daemon() ->
    Exe = ewpcap_daemon:executable(),
    Name = "ewp_extcap_ct_" ++ os:getpid() ++ "_" ++ integer_to_list(erlang:unique_integer([positive])),
    Cookie = "ewp_extcap_cookie_" ++ integer_to_list(rand:uniform(1 bsl 40)),
    Parent = self(),
    Holder = spawn(fun() ->
                           Port = open_port({spawn_executable, Exe},
                                            [{args, ["-sname", Name, "-v", "--stdin"]},
                                             {env, [{"EWPCAPD_COOKIE", Cookie}]},
                                             {line, 1024}, binary, exit_status, use_stdio,
                                             stderr_to_stdout]),
                           hold(Port, Parent, [])
                   end),
    receive
        {Holder, {ok, Node}} -> {ok, Holder, Node, Cookie};
        {Holder, Error} -> ct:fail({ewpcapd, Error})
    after ?READY_MS ->
        ct:fail({ewpcapd, timeout})
    end.

hold(Port, Parent, Lines) ->
    receive
        {Port, {data, {eol, <<"ready ", Node/binary>> = L}}} ->
            Parent ! {self(), {ok, binary_to_atom(Node)}},
            hold(Port, Parent, [L | Lines]);
        {Port, {data, {_, L}}} ->
            hold(Port, Parent, [L | Lines]);
        {Port, {exit_status, S}} ->
            Parent ! {self(), {exit, S, lists:reverse(Lines)}};
        {lines, From} ->
            From ! {self(), lists:reverse(Lines)},
            hold(Port, Parent, Lines);
        {stop, From} ->
            catch port_close(Port),
            From ! {self(), stopped}
    end.

stop_daemon(Holder) ->
    Holder ! {stop, self()},
    receive
        {Holder, stopped} -> ok
    after 5000 -> ok
    end.

%% How many handles on lo the daemon has closed at a client's request
%% (not because the client's node went away).
closes(Config) ->
    Holder = ?config(daemon, Config),
    Holder ! {lines, self()},
    receive
        {Holder, Lines} ->
            length([L || L <- Lines, binary:match(L, <<": close lo (closed;">>) =/= nomatch])
    after 5000 ->
        ct:fail(daemon_holder)
    end.

%%% ===================================================================
%%% tshark, the extcap, commands
%%% ===================================================================

extcap_path() ->
    Ebin = filename:dirname(code:which(ewpcap)),
    filename:join([filename:dirname(Ebin), "bin", "ewpcap_extcap"]).

%% Where tshark looks for a user's extcap programs: its "Personal Extcap
%% path" (Wireshark 4.1 and later), else the extcap folder under its
%% personal configuration folder (4.0 and before).
personal_extcap_dir(Env) ->
    {0, Out, _} = run(["tshark", "-G", "folders"], Env),
    Folders = [{K, V} || L <- lines(Out), [K, V] <- [binary:split(L, <<":">>)]],
    Get = fun(K) -> case lists:keyfind(K, 1, Folders) of
                        {_, V} -> binary_to_list(string:trim(V));
                        false -> undefined
                    end
          end,
    case Get(<<"Personal Extcap path">>) of
        undefined -> filename:join(Get(<<"Personal configuration">>), "extcap");
        P -> P
    end.

extcap(Config, Args) ->
    run([?config(extcap, Config) | Args], ?config(env, Config)).

tshark(Config, Args) ->
    run(["tshark" | Args], ?config(env, Config)).

run(Argv, Env) ->
    wait_exit(start(Argv, Env, undefined), ?RUN_MS).

%% sh -c 'exec ARGV' in the priv dir's tmp, stdout to Out (or a file of
%% its own), stderr to a file; the port's os pid is the command's.
start(Argv, Env, Out0) ->
    Dir = filename:join("/tmp", "ewpcap_extcap_ct"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    N = os:getpid() ++ "-" ++ integer_to_list(erlang:unique_integer([positive])),
    Out = case Out0 of
              undefined -> filename:join(Dir, "proc-" ++ N ++ ".out");
              _ -> Out0
          end,
    Err = filename:join(Dir, "proc-" ++ N ++ ".err"),
    Cmd = lists:flatten(["exec ", lists:join(" ", [quote(A) || A <- Argv]),
                         " </dev/null >", quote(Out), " 2>", quote(Err)]),
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{args, ["-c", Cmd]}, {env, Env}, exit_status, binary]),
    {os_pid, Pid} = erlang:port_info(Port, os_pid),
    P = #{port => Port, pid => Pid, out => Out, err => Err},
    put(procs, [P | get_procs()]),
    P.

wait_exit(#{port := Port, out := Out, err := Err} = P, Ms) ->
    receive
        {Port, {exit_status, Status}} ->
            put(procs, [Q || Q <- get_procs(), Q =/= P]),
            {Status, read(Out), read(Err)}
    after Ms ->
        stop_proc(P),
        ct:fail({timeout, read(Out), read(Err)})
    end.

signal(#{pid := Pid}, Sig) ->
    _ = os:cmd("kill -" ++ Sig ++ " " ++ integer_to_list(Pid)),
    ok.

read(File) ->
    case file:read_file(File) of
        {ok, B} -> B;
        {error, _} -> <<>>
    end.

lines(Bin) ->
    [L || L <- binary:split(Bin, <<"\n">>, [global, trim_all]),
          binary:match(L, <<"Running as user \"root\"">>) =:= nomatch].

%%% ===================================================================
%%% Traffic on lo
%%% ===================================================================

%% A datagram to 127.0.0.1:Port every 100 ms until told to stop.
sender(Port) ->
    spawn(fun() ->
                  {ok, S} = gen_udp:open(0, [{ip, {127, 0, 0, 1}}, binary]),
                  send_loop(S, Port)
          end).

send_loop(S, Port) ->
    ok = gen_udp:send(S, {127, 0, 0, 1}, Port, <<"ewpcap_extcap">>),
    receive
        stop -> gen_udp:close(S)
    after 100 ->
        send_loop(S, Port)
    end.
