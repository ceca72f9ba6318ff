%%% @doc ewpcap_extcap: a Wireshark extcap program, so that Wireshark
%%% and tshark capture through ewpcapd (see `ewpcap_extcap(1)').
%%%
%%% This module is the main module of the escript `bin/ewpcap_extcap'
%%% built by `make' (the same sh wrapper as ewpcap_dump's, see
%%% bin-src/mkescript.escript: `--tls-optfile' and IPv6 nodes set the
%%% distribution protocol, SIGTERM and SIGINT reach the emulator as
%%% SIGTERM). It answers Wireshark's extcap calls:
%%%
%%% <ul>
%%% <li>`--extcap-interfaces': `extcap {version=..}{help=..}', then one
%%%     `interface {value=..}{display=..}' line per interface
%%%     (ewpcap_extcap_conf: the generic `ewpcap' and those of the
%%%     configuration file);</li>
%%% <li>`--extcap-version': the `extcap' line alone;</li>
%%% <li>`--extcap-interface I --extcap-dlts': one `dlt' line; the link type
%%%     is known only once the device is open, so it is nominal, as
%%%     sshdump's (the savefile header written to the FIFO carries the
%%%     real one);</li>
%%% <li>`--extcap-interface I --extcap-config': the arguments, one `arg'
%%%     line each;</li>
%%% <li>`--extcap-interface I --capture --fifo PATH
%%%     [--extcap-capture-filter F] [arguments]': reaches the daemon and
%%%     opens the device as ewpcap_dump does (ewpcap_dump:daemon/1,
%%%     open_live/4), and writes a classic pcap savefile (microseconds,
%%%     ewpcap_pcap_file) to the FIFO until SIGTERM or SIGINT, the
%%%     reader's end of the FIFO closing (EPIPE: the emulator ignores
%%%     SIGPIPE, the write fails) or the capture failing; the daemon's
%%%     handle is then closed.</li>
%%% </ul>
%%% Errors: one line on standard error (Wireshark shows it), exit status 1
%%% for a runtime error (daemon, device, FIFO), 2 for bad arguments.
%%% @end
-module(ewpcap_extcap).

-include("ewpcap.hrl").
-include("ewpcap_dump.hrl").
-include_lib("kernel/include/file.hrl").

-export([main/1]).

-define(EXTCAP, "ewpcap_extcap").
-define(BATCH, 256).
-define(NOMINAL_DLT, 147).   % DLT_USER0, as sshdump

%% Arguments without a value, then those with one.
-define(FLAGS, ["extcap-interfaces", "extcap-dlts", "extcap-config", "capture", "no-promisc",
                "help", "debug"]).
-define(VALUED, ["extcap-interface", "fifo", "extcap-capture-filter", "node", "cookie",
                 "cookie-file", "tls-optfile", "device", "snaplen", "filter", "log-level",
                 "log-file", "debug-file"]).

%%% ===================================================================
%%% escript entry point
%%% ===================================================================

%% @doc The escript's entry point: runs and halts with 0, 1 (runtime
%% error) or 2 (bad arguments).
-spec main([string()]) -> no_return().
main(Args) ->
    ok = logger:set_primary_config(level, none),
    Status =
        try
            run(parse(Args, #{}))
        catch
            throw:{usage, Msg} -> err("~ts", [Msg]), 2;
            throw:{fatal, Msg} -> err("~ts", [Msg]), 1;
            Class:Reason:Stack -> err("internal error: ~tp", [{Class, Reason, Stack}]), 1
        end,
    erlang:halt(Status).

%%% ===================================================================
%%% The command line
%%% ===================================================================

parse([], A) ->
    A;
parse(["--extcap-version" | Rest], A) ->
    parse(Rest, A#{"extcap-version" => true});
parse(["--extcap-version=" ++ V | Rest], A) ->
    parse(Rest, A#{"extcap-version" => V});
parse(["--" ++ Long | Rest], A) ->
    {Name, Inline} = case string:split(Long, "=") of
                         [N, Val] -> {N, {value, Val}};
                         [N] -> {N, none}
                     end,
    case {lists:member(Name, ?FLAGS), lists:member(Name, ?VALUED), Inline, Rest} of
        {true, _, none, _} -> parse(Rest, A#{Name => true});
        {true, _, _, _} -> usage("option --~ts takes no value", [Name]);
        {_, true, {value, V}, _} -> parse(Rest, A#{Name => V});
        {_, true, none, [V | Rest1]} -> parse(Rest1, A#{Name => V});
        {_, true, none, []} -> usage("option --~ts needs a value", [Name]);
        {false, false, _, _} -> usage("unknown option --~ts (see " ?EXTCAP " --help)", [Name])
    end;
parse([Word | _], _A) ->
    usage("unexpected argument '~ts' (see " ?EXTCAP " --help)", [Word]).

run(#{"extcap-interfaces" := true}) ->
    list_interfaces();
run(#{"capture" := true, "fifo" := Fifo} = A) ->
    try
        capture(A)
    catch
        throw:{Kind, _} = Error when Kind =:= usage; Kind =:= fatal ->
            release_fifo(Fifo),
            throw(Error)
    end;
run(#{"capture" := true}) ->
    usage("--capture needs --fifo PATH", []);
run(#{"extcap-dlts" := true} = A) ->
    _ = interface(A),
    out("dlt {number=~b}{name=ewpcap}{display=Remote capture dependent DLT}~n", [?NOMINAL_DLT]);
run(#{"extcap-config" := true} = A) ->
    config(interface(A));
run(#{"extcap-version" := _}) ->
    out("~ts~n", [extcap_line()]);
run(#{"extcap-capture-filter" := _, "extcap-interface" := _}) ->
    % Wireshark's check of a capture filter: no output means valid; the
    % daemon compiles it when the capture starts
    0;
run(#{"help" := true}) ->
    out("~ts", [usage_text()]);
run(_) ->
    usage("nothing to do (see " ?EXTCAP " --help)", []).

usage_text() ->
    "Usage: " ?EXTCAP " --extcap-interfaces | --extcap-version\n"
    "       " ?EXTCAP " --extcap-interface IF --extcap-dlts | --extcap-config\n"
    "       " ?EXTCAP " --extcap-interface IF --capture --fifo PATH\n"
    "                     [--extcap-capture-filter BPF] [options]\n"
    "\n"
    "A Wireshark extcap: Wireshark and tshark run it (see ewpcap_extcap(1)).\n"
    "  --node NODE        the ewpcapd node, NAME@HOST (default: one started for the capture)\n"
    "  --cookie C         its distribution cookie\n"
    "  --cookie-file F    a file holding it (default: ~/.erlang.cookie)\n"
    "  --tls-optfile F    reach NODE over TLS distribution with this -ssl_dist_optfile\n"
    "  --device DEV       the device (default: the daemon's first)\n"
    "  --snaplen N        bytes per packet, 1..262144 (default 262144)\n"
    "  --filter EXPR      a pcap-filter(7) expression, and-ed with the capture filter\n"
    "  --no-promisc       do not put the device in promiscuous mode\n"
    "Interfaces: ewpcap, and one per entry of /etc/ewpcap/extcap.conf\n"
    "($EWPCAP_EXTCAP_CONF).\n".

%%% ===================================================================
%%% Interfaces, DLTs, arguments
%%% ===================================================================

list_interfaces() ->
    Ifaces = case ewpcap_extcap_conf:read() of
                 {ok, Is} ->
                     Is;
                 {error, Msg} ->
                     % Wireshark still lists the generic interface; the
                     % file's interfaces say what is wrong when used
                     err("~ts", [Msg]),
                     [ewpcap_extcap_conf:generic()]
             end,
    out("~ts~n", [extcap_line()]),
    lists:foreach(fun(#{value := V, display := D}) ->
                          out("interface {value=~ts}{display=~ts}~n", [V, D])
                  end, Ifaces),
    0.

extcap_line() ->
    _ = application:load(ewpcap),
    Vsn = case application:get_key(ewpcap, vsn) of
              {ok, V} -> V;
              undefined -> "unknown"
          end,
    ["extcap {version=", Vsn, "}", [["{help=", H, "}"] || H <- help_page()]].

%% The README next to the escript: bin/../README.md in the source tree,
%% bin/../share/doc/ewpcap/README.md installed.
help_page() ->
    try escript:script_name() of
        S ->
            Top = filename:dirname(filename:dirname(ewpcap_dump:resolve(filename:absname(S)))),
            [["file://", F] || F <- [filename:join(Top, "README.md"),
                                     filename:join([Top, "share", "doc", "ewpcap", "README.md"])],
                               filelib:is_regular(F)]
    catch
        _:_ -> []
    end.

%% The interface of --extcap-interface.
interface(#{"extcap-interface" := Name}) ->
    case ewpcap_extcap_conf:read() of
        {ok, Ifaces} ->
            case ewpcap_extcap_conf:find(Name, Ifaces) of
                {ok, I} -> I;
                error -> usage("no interface ~ts (see " ?EXTCAP " --extcap-interfaces)", [Name])
            end;
        {error, Msg} when Name =:= "ewpcap" ->
            err("~ts", [Msg]),
            ewpcap_extcap_conf:generic();
        {error, Msg} ->
            fatal("~ts", [Msg])
    end;
interface(_) ->
    usage("--extcap-interface is missing", []).

%% One `arg' line per argument; an interface of the file has its node and
%% device fixed, its options as defaults.
config(#{node := Node, defaults := D}) ->
    Own = case Node of
              undefined ->
                  [{"--node", "Node", "string",
                    "{tooltip=The ewpcapd node, NAME@HOST; empty: an ewpcapd started on this host}"
                    "{placeholder=pcap@capturehost}", undefined},
                   {"--device", "Device", "string",
                    "{tooltip=The device to capture on; empty: the daemon's first}"
                    "{placeholder=eth0}", undefined}];
              _ ->
                  []
          end,
    Common = [{"--cookie", "Cookie", "password",
               "{tooltip=The node's distribution cookie}", maps:get(cookie, D, undefined)},
              {"--cookie-file", "Cookie file", "fileselect",
               "{tooltip=A file holding the cookie (default: ~/.erlang.cookie)}{mustexist=true}",
               maps:get(cookie_file, D, undefined)},
              {"--tls-optfile", "TLS options file", "fileselect",
               "{tooltip=Reach the node over TLS distribution with this -ssl_dist_optfile}"
               "{mustexist=true}", maps:get(tls_optfile, D, undefined)},
              {"--snaplen", "Snapshot length", "integer",
               "{tooltip=Bytes captured per packet}{range=1,262144}",
               integer_to_list(maps:get(snaplen, D, ?MAX_SNAPLEN))},
              {"--filter", "Remote capture filter", "string",
               "{tooltip=A pcap-filter expression the daemon applies, and-ed with the capture filter}",
               maps:get(filter, D, undefined)},
              {"--no-promisc", "No promiscuous mode", "boolflag",
               "{tooltip=Do not put the device in promiscuous mode}",
               case maps:get(promisc, D, true) of
                   true -> "false";
                   false -> "true"
               end}],
    Args = lists:zip(lists:seq(0, length(Own ++ Common) - 1), Own ++ Common),
    lists:foreach(
      fun({N, {Call, Display, Type, Extra, Default}}) ->
              Group = case Call of
                          "--" ++ C when C =:= "node"; C =:= "cookie"; C =:= "cookie-file";
                                         C =:= "tls-optfile" -> "Daemon";
                          _ -> "Capture"
                      end,
              out("arg {number=~b}{call=~ts}{display=~ts}{type=~ts}~ts~ts{group=~ts}~n",
                  [N, Call, Display, Type, Extra,
                   case Default of
                       undefined -> "";
                       _ -> ["{default=", Default, "}"]
                   end, Group])
      end, Args),
    0.

%%% ===================================================================
%%% Capture
%%% ===================================================================

capture(#{"fifo" := Fifo} = A) ->
    #{node := INode, device := IDev, defaults := D} = interface(A),
    Node = case INode of
               undefined -> node_arg(value(A, "node", undefined));
               _ -> INode
           end,
    Dev = case IDev of
              undefined -> value(A, "device", "");
              _ -> IDev
          end,
    Cookie = cookie(A, D),
    case value(A, "tls-optfile", maps:get(tls_optfile, D, undefined)) of
        undefined -> ok;
        F -> tls_optfile(F)
    end,
    Snaplen = snaplen(value(A, "snaplen", integer_to_list(maps:get(snaplen, D, ?MAX_SNAPLEN)))),
    Promisc = not maps:is_key("no-promisc", A) andalso maps:get(promisc, D, true),
    Filter = filter([value(A, "filter", maps:get(filter, D, undefined)),
                     value(A, "extcap-capture-filter", undefined)]),
    Daemon = ewpcap_dump:daemon(#opts{node = Node, cookie = Cookie}),
    DevBin = unicode:characters_to_binary(Dev),
    % a capture of its own, its filter the kernel's (as ewpcap_dump's)
    Base = [{snaplen, Snaplen}, {promisc, Promisc}, {time_unit, microsecond}, {batch, ?BATCH},
            {share, false}],
    S = ewpcap_dump:open_live(Daemon, DevBin, Base, Filter),
    #ewpcap_resource{ref = Ref} = S,
    {_, Dlt} = ewpcap_dump:handle_info(Daemon, Ref, DevBin),
    ok = ewpcap_dump:install_signals(),
    W = case ewpcap_pcap_file:open_write(Fifo, #{unbuffered => true, snaplen => Snaplen, dlt => Dlt}) of
            {ok, W0} ->
                W0;
            {error, Reason} ->
                _ = ewpcap:close(S),
                fatal("~ts", [ewpcap_pcap_file:format_error(Reason)])
        end,
    End = loop(Ref, W),
    % the daemon's handle first: nothing is left open on the capture host
    ok = ewpcap:close(S),
    case End of
        {stop, W1} ->
            _ = ewpcap_pcap_file:close_write(W1),
            0;
        {error, Msg} ->
            fatal("~ts", [Msg])
    end.

%% The capture failed before its header was written: dumpcap is blocked
%% opening the FIFO for reading, and would wait for ever after our exit.
%% Opening and closing our end gives it an end of file; a FIFO nobody
%% reads is left alone after a second.
release_fifo(Fifo) ->
    case file:read_file_info(Fifo) of
        {ok, #file_info{type = other}} ->
            {Pid, MRef} = spawn_monitor(fun() ->
                                                case file:open(Fifo, [write, raw, binary]) of
                                                    {ok, Fd} -> file:close(Fd);
                                                    {error, _} -> ok
                                                end
                                        end),
            receive
                {'DOWN', MRef, process, Pid, _} -> ok
            after 1000 ->
                ok
            end;
        _ ->
            ok
    end.

loop(Ref, W) ->
    receive
        {ewpcap, Ref, Dlt, Time, Len, Packet} ->
            write(Ref, W, Dlt, [{Time, Len, Packet}]);
        {ewpcap_batch, Ref, Dlt, Batch} ->
            write(Ref, W, Dlt, Batch);
        {ewpcap_error, Ref, Reason} ->
            {error, io_lib:format("capture failed: ~ts", [reason(Reason)])};
        {ewpcap_dump, signal, _} ->
            {stop, W}
    end.

write(Ref, W, Dlt, Batch) ->
    case ewpcap_pcap_file:write(W, Dlt, Batch) of
        {ok, W1} -> loop(Ref, W1);
        {error, {_, closed}, W1} -> {stop, W1};   % the reader is gone
        {error, Reason, _} -> {error, ewpcap_pcap_file:format_error(Reason)}
    end.

%%% -------------------------------------------------------------------
%%% Arguments of the capture
%%% -------------------------------------------------------------------

%% An argument's value; an empty one is not given (Wireshark passes the
%% empty values of its dialog too).
value(A, Name, Default) ->
    case maps:get(Name, A, "") of
        "" -> Default;
        V -> V
    end.

node_arg(undefined) ->
    undefined;
node_arg(V) ->
    case string:split(V, "@") of
        [[_ | _], [_ | _]] -> list_to_atom(V);
        _ -> usage("invalid --node '~ts': expected NAME@HOST", [V])
    end.

%% --cookie, else --cookie-file, else the entry's, else undefined
%% (~/.erlang.cookie, as for any node).
cookie(A, D) ->
    case {value(A, "cookie", maps:get(cookie, D, undefined)),
          value(A, "cookie-file", maps:get(cookie_file, D, undefined))} of
        {undefined, undefined} ->
            undefined;
        {undefined, File} ->
            case file:read_file(File) of
                {ok, Bin} ->
                    case string:trim(unicode:characters_to_list(Bin)) of
                        "" -> fatal("cookie file ~ts is empty", [File]);
                        C -> list_to_atom(C)
                    end;
                {error, Posix} ->
                    fatal("cookie file ~ts: ~ts", [File, file:format_error(Posix)])
            end;
        {C, _} ->
            list_to_atom(C)
    end.

snaplen(V) ->
    try list_to_integer(V) of
        N when N >= 1, N =< ?MAX_SNAPLEN -> N;
        _ -> usage("invalid --snaplen '~ts': not in 1..~b", [V, ?MAX_SNAPLEN])
    catch
        error:badarg -> usage("invalid --snaplen '~ts': not a number", [V])
    end.

filter(Parts) ->
    case [P || P <- Parts, P =/= undefined] of
        [] -> <<>>;
        [F] -> unicode:characters_to_binary(F);
        Fs -> unicode:characters_to_binary(lists:join(" and ", ["(" ++ F ++ ")" || F <- Fs]))
    end.

%% The wrapper of bin/ewpcap_extcap turns --tls-optfile into
%% `-proto_dist inet_tls -ssl_dist_optfile F' (the protocol is fixed when
%% the emulator starts); here we only check that it did.
tls_optfile(File) ->
    filelib:is_regular(File) orelse fatal("--tls-optfile ~ts: no such file", [File]),
    Protos = case init:get_argument(proto_dist) of
                 {ok, Ps} -> lists:append(Ps);
                 error -> []
             end,
    lists:member("inet_tls", Protos) orelse lists:member("inet6_tls", Protos) orelse
        usage("--tls-optfile: TLS distribution is not running: run bin/" ?EXTCAP
              " (its wrapper sets it), or set ERL_FLAGS=\"-proto_dist inet_tls"
              " -ssl_dist_optfile ~ts\"", [filename:absname(File)]).

%%% ===================================================================
%%% Output
%%% ===================================================================

out(Fmt, Args) ->
    io:format(Fmt, Args),
    0.

err(Fmt, Args) ->
    io:put_chars(standard_error, [?EXTCAP ": ", io_lib:format(Fmt, Args), $\n]).

-spec usage(io:format(), [term()]) -> no_return().
usage(Fmt, Args) ->
    throw({usage, io_lib:format(Fmt, Args)}).

-spec fatal(io:format(), [term()]) -> no_return().
fatal(Fmt, Args) ->
    throw({fatal, io_lib:format(Fmt, Args)}).

reason(R) when is_list(R) -> R;
reason(R) when is_binary(R) -> R;
reason(R) -> io_lib:format("~tp", [R]).
