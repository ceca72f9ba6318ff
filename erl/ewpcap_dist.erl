%%% @doc Making this node distributed: epmd, the distribution, a name.
%%%
%%% Shared by the embedded daemon (ewpcap_daemon, which makes a plain
%%% `erl' shell distributed so that it can reach its ewpcapd) and the
%%% `ewpcap_dump' command line tool. Nothing here runs when the node is
%%% already distributed.
%%% @end
-module(ewpcap_dist).

-export([ensure/2, start_epmd/0, epmd_path/0, long_names/1, check_name/1]).

-define(EPMD_TIMEOUT, 5000).

%%% ===================================================================
%%% API
%%% ===================================================================

%% @doc Makes the local node distributed unless it already is: starts
%% epmd (start_epmd/0), then `net_kernel:start([Name, Names])' with
%% `Name' = `Prefix ++ "_" ++ OsPid ++ "_" ++ Random'. With `longnames'
%% and no fully qualified host name, the name gets the host `127.0.0.1'.
%% Returns `ok' or `{error, Reason}' from net_kernel:start/1.
-spec ensure(string(), shortnames | longnames) -> ok | {error, term()}.
ensure(Prefix, Names) ->
    case erlang:node() of
        nonode@nohost ->
            ok = start_epmd(),
            Base = Prefix ++ "_" ++ os:getpid() ++ "_" ++
                integer_to_list(rand:uniform(16#FFFFFFFF)),
            case net_kernel:start([list_to_atom(Base), Names]) of
                {ok, _} ->
                    ok;
                {error, _} when Names =:= longnames ->
                    % no FQDN for this host: use the loopback address
                    case net_kernel:start([list_to_atom(Base ++ "@127.0.0.1"), longnames]) of
                        {ok, _} -> ok;
                        {error, _} = Error -> Error
                    end;
                {error, _} = Error ->
                    Error
            end;
        _ ->
            ok
    end.

%% @doc Runs `epmd -daemon' (found by epmd_path/0) and waits for it to
%% return (it forks; an epmd already running makes it exit as well). Its
%% exit status is not informative either way: a failure shows when the
%% distribution does not start. `ok' also when no epmd is found (logged).
-spec start_epmd() -> ok.
start_epmd() ->
    case epmd_path() of
        false ->
            logger:warning("ewpcap: epmd not found, not starting it"),
            ok;
        Epmd ->
            Port = open_port({spawn_executable, Epmd},
                             [{args, ["-daemon"]}, exit_status, stderr_to_stdout]),
            wait_exit(Port)
    end.

%% @doc epmd: in `PATH', else in the Erlang installation (`bin/epmd',
%% `erts-*/bin/epmd'); `false' when there is none.
-spec epmd_path() -> file:filename() | false.
epmd_path() ->
    case os:find_executable("epmd") of
        false ->
            Root = code:root_dir(),
            Candidates =
                [filename:join([Root, "bin", "epmd"])
                 | filelib:wildcard(filename:join([Root, "erts-*", "bin", "epmd"]))],
            case [F || F <- Candidates, filelib:is_regular(F)] of
                [F | _] -> F;
                [] -> false
            end;
        Path ->
            Path
    end.

%% @doc Whether a node on `Host' is named with long names: as this node
%% is when it is distributed, else when the host name holds a dot.
-spec long_names(string()) -> boolean().
long_names(Host) ->
    case net_kernel:longnames() of
        true -> true;
        false -> false;
        ignored -> lists:member($., Host) orelse lists:member($:, Host)
    end.

%% @doc Whether this node can reach Node at all, by the form of the name:
%% a -sname node reaches only short host parts (no dot, not an address),
%% a -name node only long ones (an atom holds at most 255 characters, so
%% no name is too long here).
%% Distribution itself answers such a call with a bare nodedown (and a log
%% line): this says why instead.
-spec check_name(node()) -> ok | {error, {bad_node_name, string()}}.
check_name(Node) when Node =:= node() ->
    ok;
check_name(Node) ->
    Name = atom_to_list(Node),
    case string:split(Name, "@", trailing) of
        [Alive, Host] when Alive =/= "", Host =/= "" ->
            Long = lists:member($., Host) orelse lists:member($:, Host),
            case {net_kernel:longnames(), Long} of
                {false, true} ->
                    bad_name("~ts has a long host part and this node a short name (-sname): "
                             "a -sname node reaches only -sname nodes; start this node with "
                             "-name, or the daemon with -sname", [Name]);
                {true, false} ->
                    bad_name("~ts has a short host part and this node a long name (-name): "
                             "a -name node reaches only -name nodes; name the daemon "
                             "NAME@FQDN or NAME@ADDRESS, or start this node with -sname",
                             [Name]);
                _ ->
                    ok
            end;
        _ ->
            bad_name("~ts is not NAME@HOST", [Name])
    end.

bad_name(Format, Args) ->
    {error, {bad_node_name, lists:flatten(io_lib:format(Format, Args))}}.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

wait_exit(Port) ->
    receive
        {Port, {exit_status, _}} ->
            % the port closes itself after its exit status: a process
            % trapping exits gets its 'EXIT', take it
            case process_info(self(), trap_exit) of
                {trap_exit, true} ->
                    receive
                        {'EXIT', Port, _} -> ok
                    after ?EPMD_TIMEOUT -> ok
                    end;
                _ ->
                    ok
            end;
        {Port, {data, _}} ->
            wait_exit(Port)
    after ?EPMD_TIMEOUT ->
        catch port_close(Port),
        receive
            {'EXIT', Port, _} -> ok
        after 0 -> ok
        end
    end.
