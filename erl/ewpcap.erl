%%% @doc Packet capture for Erlang through the ewpcapd C-node.
%%%
%%% A drop-in replacement for the ewpcap NIF library: libpcap runs in a
%%% separate OS process, `priv/ewpcapd', a hidden Erlang node written in C,
%%% and this module talks to it with ordinary distribution messages
%%% (`gen_server:call({ewpcap, Node}, Request)'). The wire protocol is
%%% described in `docs/PROTOCOL.md' and implemented in `cnode/decode.c'.
%%%
%%% == Which daemon ==
%%% The functions without a `Node' argument use the default daemon node,
%%% see node/0: the node named by the application environment variable
%%% `{ewpcap, [{node, Node}]}' when it is set, else an ewpcapd started and
%%% supervised by the ewpcap application itself (ewpcap_daemon, which
%%% also turns a non-distributed node into a distributed one). open/3,
%%% dev/1, getifaddrs/1 and info/1 take the daemon node explicitly.
%%%
%%% == Handles and owners ==
%%% open/0,1,2,3 return a socket, `#ewpcap_resource{}' (include
%%% `ewpcap/include/ewpcap.hrl'). The process that called open is the
%%% owner: it receives the packets. For each handle a small guard process
%%% is spawned on the local node; it makes the open call (so ewpcapd links
%%% to the guard, never to the owner), monitors the owner and:
%%% <ul>
%%% <li>exits when the owner exits, and ewpcapd closes the handle;</li>
%%% <li>exits when close/1 is called;</li>
%%% <li>sends `{ewpcap_error, Ref, nodedown}' to the owner and exits when
%%%     the connection to the daemon is lost.</li>
%%% </ul>
%%%
%%% == Messages to the owner ==
%%% <ul>
%%% <li>`{ewpcap, Ref, DatalinkType, Time, Length, Packet}': a packet.
%%%     `Ref' is the socket's `ref'; `DatalinkType' the link layer
%%%     (`DLT_*' integer); `Time' `{MegaSecs, Secs, MicroSecs}' or, with
%%%     `{time_unit, microsecond}', `Secs * 1000000 + MicroSecs'; `Length'
%%%     the length on the wire; `Packet' the captured bytes
%%%     (`byte_size(Packet) =< snaplen').</li>
%%% <li>`{ewpcap_error, Ref, Reason :: string()}': capturing failed (for
%%%     example the interface went away). Capture stops; the handle stays
%%%     open until close/1.</li>
%%% <li>`{ewpcap_error, Ref, nodedown}': the connection to the daemon was
%%%     lost; the handle is gone.</li>
%%% </ul>
%%%
%%% == Errors ==
%%% Programmer errors (a wrong type of argument or option value, a socket
%%% that is closed) raise `badarg'. Runtime errors are returned:
%%% `{error, string()}' is libpcap's text, `{error, enomem}' a filter longer
%%% than its limit, `{error, {bad_option, Key}}' an unknown option and
%%% `{error, nodedown}' a daemon that cannot be reached.
%%% @end
-module(ewpcap).

-include("ewpcap.hrl").

-compile({no_auto_import, [node/0]}).

-export([
    open/0, open/1, open/2, open/3,
    close/1,
    filter/2, filter/3,
    read/1, read/2,
    write/2,
    stats/1,
    dev/0, dev/1,
    getifaddrs/0, getifaddrs/1,
    info/0, info/1,
    node/0
]).

-export_type([
    socket/0,
    options/0,
    filter_options/0,
    open_option/0,
    filter_option/0,
    ifaddrs/0,
    info/0
]).

-define(INT_MAX, 16#7FFFFFFF).
-define(CLOSE_WAIT, 5000).

-type socket() :: #ewpcap_resource{}.
%% A capture handle returned by open/0,1,2,3.

-type filter_option() ::
    {optimize, boolean()}
    | {netmask, 0..16#FFFFFFFF | {byte(), byte(), byte(), byte()}}
    | {limit, integer()}.
%% <ul>
%% <li>`{optimize, Bool}': the `pcap_compile' optimize flag; default `true'.</li>
%% <li>`{netmask, Mask}': the netmask for `pcap_compile', an integer or an
%%     IPv4 tuple; default `16#FFFFFFFF'.</li>
%% <li>`{limit, N}': longest filter accepted: a filter `F' passes when
%%     `iolist_size(F) < N orelse N < 0', else `{error, enomem}'; default
%%     8192.</li>
%% </ul>

-type open_option() ::
    {promisc, boolean()}
    | {snaplen, 0..?INT_MAX}
    | {timeout, immediate | infinity | 0..?INT_MAX}
    | {to_ms, 0..?INT_MAX}
    | {immediate, boolean()}
    | {buffer, -16#80000000..?INT_MAX}
    | {monitor, boolean()}
    | {time_unit, timestamp | microsecond}
    | {batch, 1..65536}
    | {dump, iodata()}
    | {filter, iodata()}
    | filter_option().
%% <ul>
%% <li>`{promisc, Bool}': promiscuous mode; default `false'.</li>
%% <li>`{snaplen, N}': bytes captured per packet; default 65535.</li>
%% <li>`{timeout, immediate | infinity | Ms}': `immediate' delivers each
%%     packet as it arrives (`pcap_set_immediate_mode'); `infinity' buffers
%%     packets with no timeout; `Ms' buffers them until the buffer fills or
%%     `Ms' milliseconds pass (`pcap_set_timeout'). Default (no `timeout',
%%     `to_ms' or `immediate' option): 1 ms blocks, which lose nothing where
%%     libpcap loses nothing (immediate mode gives each packet a
%%     snaplen-sized slot and drops on bursts; see the README).</li>
%% <li>`{to_ms, Ms}': old name of `{timeout, Ms}'.</li>
%% <li>`{immediate, Bool}': overrides the immediate mode chosen by
%%     `timeout'.</li>
%% <li>`{buffer, N}': `pcap_set_buffer_size' when `N > 0'; by default
%%     ewpcapd asks for 16 MiB, 32 MiB in immediate mode.</li>
%% <li>`{monitor, Bool}': monitor mode (rfmon) on wireless devices that
%%     support it; default `false'.</li>
%% <li>`{time_unit, timestamp | microsecond}': format of `Time' in packet
%%     messages; default `timestamp'.</li>
%% <li>`{batch, N}': up to N packets per message,
%%     `{ewpcap_batch, Ref, DatalinkType, [{Time, Length, Packet}]}', sent
%%     when full and after each read from the kernel ring (so it adds no
%%     delay); default 1: one `{ewpcap, ...}' message per packet.</li>
%% <li>`{dump, Path}': record the packets to a pcap savefile on the
%%     daemon's host instead of sending them (the daemon's `--files DIR'
%%     confines `Path'; relative paths are taken in DIR).</li>
%% <li>`{filter, Filter}': a pcap filter applied once the handle is active,
%%     with the filter options; default none (every packet).</li>
%% <li>the filter options, see filter_option().</li>
%% </ul>

-type options() :: [open_option() | promisc | immediate | monitor | optimize].
%% Options of open/2,3. As with proplists, a bare atom `Key' stands for
%% `{Key, true}' and the first occurrence of an option counts.

-type filter_options() :: [filter_option() | optimize].
%% Options of filter/3.

-type ifaddrs() :: [{string(), [ifopt()]}].
-type ifopt() ::
    {flag, [loopback]}
    | {description, string()}
    | {addr, inet:ip_address()}
    | {netmask, inet:ip_address()}
    | {broadaddr, inet:ip_address()}
    | {dstaddr, inet:ip_address()}.
%% Interfaces as returned by getifaddrs/0,1.

-type info() :: [
    {node, node()}
    | {os_pid, integer()}
    | {handles, [[{atom(), term()}]]}
    | {nodes, [node()]}
].
%% The daemon's description of itself, see info/0.

%%% ===================================================================
%%% API
%%% ===================================================================

%% @doc Opens the first device with the default options.
%% Same as `open(<<>>, [])'.
-spec open() -> {ok, socket()} | {error, term()}.
open() ->
    open(<<>>, []).

%% @doc Opens a device with the default options.
%% Same as `open(Dev, [])'.
-spec open(iodata() | {file, iodata()}) -> {ok, socket()} | {error, term()}.
open(Dev) ->
    open(Dev, []).

%% @doc Opens a device on the default daemon node (see node/0) and starts
%% capturing.
%%
%% `Dev' is the interface name: `<<>>' opens the first device the daemon
%% finds, `""' the Linux pseudo device `"any"'.
%%
%% The defaults: promiscuous mode disabled, a snaplen of 65535 bytes,
%% 1 ms delivery blocks (see `timeout'), timestamps as `{MegaSecs, Secs, MicroSecs}', no filter
%% (every packet). See open_option() and filter_option() for every option.
%%
%% The caller becomes the owner of the socket and receives
%% `{ewpcap, Ref, DatalinkType, Time, Length, Packet}' for each packet,
%% `{ewpcap_error, Ref, Reason}' when capture fails or the daemon is lost
%% (see the module documentation). The handle is closed when the owner
%% exits or calls close/1.
%%
%% Returns `{error, String}' with libpcap's text when the device cannot be
%% opened or the filter not compiled (nothing stays open then),
%% `{error, enomem}' when the filter is longer than its limit,
%% `{error, {bad_option, Key}}' for an unknown option and
%% `{error, nodedown}' when the daemon cannot be reached. Raises `badarg'
%% when `Dev' is not iodata or an option has a value of the wrong type.
-spec open(iodata() | {file, iodata()}, options()) -> {ok, socket()} | {error, term()}.
open(Dev, Options) ->
    DevBin = ewpcap_opts:device(Dev),
    case ewpcap_opts:open(Options) of
        {ok, Norm} ->
            case default_node() of
                {ok, Node} -> open_handle(Node, DevBin, Norm);
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Opens a device on the ewpcapd node `Node'; otherwise as open/2.
-spec open(node(), iodata() | {file, iodata()}, options()) -> {ok, socket()} | {error, term()}.
open(Node, Dev, Options) when is_atom(Node) ->
    DevBin = ewpcap_opts:device(Dev),
    case ewpcap_opts:open(Options) of
        {ok, Norm} -> open_handle(Node, DevBin, Norm);
        {error, _} = Error -> Error
    end;
open(_, _, _) ->
    erlang:error(badarg).

%% @doc Closes the handle: capture stops and the daemon frees everything.
%% Packets already delivered stay in the owner's mailbox. Closing a closed
%% handle raises `badarg'. When the daemon cannot be reached the handle
%% is gone anyway and `ok' is returned.
-spec close(socket()) -> ok.
close(#ewpcap_resource{ref = Ref, res = {Node, Guard}}) when
    is_reference(Ref), is_atom(Node), is_pid(Guard)
->
    case call(Node, {close, Ref}) of
        ok -> stop_guard(Guard, Ref);
        {error, nodedown} -> stop_guard(Guard, Ref);
        _ -> erlang:error(badarg)
    end;
close(_) ->
    erlang:error(badarg).

%% @doc Sets a filter with the default filter options.
%% Same as `filter(Socket, Filter, [])'.
-spec filter(socket(), iodata()) -> ok | {error, term()}.
filter(Socket, Filter) ->
    filter(Socket, Filter, []).

%% @doc Compiles a pcap filter and applies it to the handle; allowed while
%% capturing. The defaults: optimized, netmask `16#FFFFFFFF', limit 8192
%% bytes (see filter_option()).
%%
%% The filter text goes to `pcap_compile(3PCAP)' unchanged: do not use
%% filters from untrusted sources. Very large filters may exhaust the
%% daemon's stack, hence the limit.
%%
%% Returns `ok', `{error, String}' with libpcap's text, `{error, enomem}'
%% when the filter is too long (the daemon is not contacted),
%% `{error, {bad_option, Key}}' for an unknown option or
%% `{error, nodedown}'. Raises `badarg' for a closed handle, a filter that
%% is not iodata or an option value of the wrong type.
-spec filter(socket(), iodata(), filter_options()) -> ok | {error, term()}.
filter(#ewpcap_resource{ref = Ref, res = {Node, _}}, Filter, Options) when
    is_reference(Ref), is_atom(Node)
->
    case ewpcap_opts:filter(Filter, Options) of
        {ok, Bin, Norm} -> reply(call(Node, {filter, Ref, Bin, Norm}));
        {error, _} = Error -> Error
    end;
filter(_, _, _) ->
    erlang:error(badarg).

%% @doc Waits for the next packet of the handle. Same as
%% `read(Socket, infinity)'.
-spec read(socket()) -> {ok, binary()} | {error, term()}.
read(Socket) ->
    read(Socket, infinity).

%% @doc Waits up to `Timeout' milliseconds for the next packet of the
%% handle: a selective receive of the owner's messages (call it from the
%% owner).
%%
%% Returns `{ok, Packet}' (the captured bytes only), `{error, Reason}' for
%% an `{ewpcap_error, Ref, Reason}' message (a libpcap string or
%% `nodedown') or `{error, eagain}' when no packet came in time.
%%
%% With `{batch, N}', read takes the first packet of an
%% `{ewpcap_batch, ...}' message and keeps the rest, in order, in the
%% process dictionary under `{ewpcap_batch, Ref}' for the next reads.
-spec read(socket(), timeout()) -> {ok, binary()} | {error, term()}.
read(#ewpcap_resource{ref = Ref}, Timeout) when
    is_reference(Ref),
    (Timeout =:= infinity orelse (is_integer(Timeout) andalso Timeout >= 0))
->
    case erase({ewpcap_batch, Ref}) of
        [{_Time, _Length, Packet} | Rest] ->
            Rest =/= [] andalso put({ewpcap_batch, Ref}, Rest),
            {ok, Packet};
        _ ->
            receive
                {ewpcap, Ref, _DatalinkType, _Time, _Length, Packet} ->
                    {ok, Packet};
                {ewpcap_batch, Ref, _DatalinkType, [{_Time, _Length, Packet} | Rest]} ->
                    Rest =/= [] andalso put({ewpcap_batch, Ref}, Rest),
                    {ok, Packet};
                {ewpcap_error, Ref, Reason} ->
                    {error, Reason};
                {ewpcap_eof, Ref} ->
                    {error, eof}
            after Timeout ->
                {error, eagain}
            end
    end;
read(_, _) ->
    erlang:error(badarg).

%% @doc Sends a packet on the handle's interface (`pcap_sendpacket(3PCAP)').
%%
%% Returns `ok', `{error, String}' with libpcap's text or
%% `{error, nodedown}'. Raises `badarg' for a closed handle or a packet
%% that is not iodata.
-spec write(socket(), iodata()) -> ok | {error, term()}.
write(#ewpcap_resource{ref = Ref, res = {Node, _}}, Packet) when
    is_reference(Ref), is_atom(Node)
->
    Bin = iolist_to_binary(Packet),
    reply(call(Node, {write, Ref, Bin}));
write(_, _) ->
    erlang:error(badarg).

%% @doc Packet counters of the handle (`pcap_stats(3PCAP)'):
%% `#ewpcap_stat{recv, drop, ifdrop, capt}', `capt' always 0.
%%
%% Returns `{ok, #ewpcap_stat{}}', `{error, String}' or
%% `{error, nodedown}'. Raises `badarg' for a closed handle.
-spec stats(socket()) -> {ok, #ewpcap_stat{}} | {error, term()}.
stats(#ewpcap_resource{ref = Ref, res = {Node, _}}) when
    is_reference(Ref), is_atom(Node)
->
    reply(call(Node, {stats, Ref}));
stats(_) ->
    erlang:error(badarg).

%% @doc The default device of the default daemon: the first device of
%% `pcap_findalldevs'.
%% Returns `{ok, Name}', `{error, String}' or `{error, nodedown}'.
-spec dev() -> {ok, string()} | {error, term()}.
dev() ->
    with_default_node(fun dev/1).

%% @doc The default device of the daemon `Node'; see dev/0.
-spec dev(node()) -> {ok, string()} | {error, term()}.
dev(Node) when is_atom(Node) ->
    call(Node, dev);
dev(_) ->
    erlang:error(badarg).

%% @doc The interfaces the default daemon may open, in
%% `pcap_findalldevs' order, modelled on `inet:getifaddrs/0':
%% `{description, String}' when there is one, `{flag, [loopback]}', then
%% `{addr, A}', `{netmask, M}', `{broadaddr, B}', `{dstaddr, D}' for each
%% IPv4 or IPv6 address. The list may hold pseudo devices (`"any"') and is
%% `[]' when the daemon may open no device.
%% Returns `{ok, Ifaddrs}', `{error, String}' or `{error, nodedown}'.
-spec getifaddrs() -> {ok, ifaddrs()} | {error, term()}.
getifaddrs() ->
    with_default_node(fun getifaddrs/1).

%% @doc The interfaces of the daemon `Node'; see getifaddrs/0.
-spec getifaddrs(node()) -> {ok, ifaddrs()} | {error, term()}.
getifaddrs(Node) when is_atom(Node) ->
    call(Node, getifaddrs);
getifaddrs(_) ->
    erlang:error(badarg).

%% @doc The default daemon's description of itself:
%% `{ok, [{node, Node}, {os_pid, Pid}, {handles, Handles}, {nodes, Nodes}]}'
%% where each handle is a property list with `ref', `owner', `link',
%% `device', `filter', `snaplen', `datalink', `packets', `bytes', `drops'
%% and `queue' (see docs/PROTOCOL.md), or `{error, nodedown}'.
-spec info() -> {ok, info()} | {error, term()}.
info() ->
    with_default_node(fun info/1).

%% @doc The description of the daemon `Node'; see info/0.
-spec info(node()) -> {ok, info()} | {error, term()}.
info(Node) when is_atom(Node) ->
    call(Node, info);
info(_) ->
    erlang:error(badarg).

%% @doc The default daemon node: the application environment variable
%% `node' of `ewpcap' when it is set, else the node of the embedded daemon,
%% started (with the ewpcap application) when it is not running yet.
%% Raises an error with the reason when the embedded daemon cannot be
%% started.
-spec node() -> node().
node() ->
    case default_node() of
        {ok, Node} -> Node;
        {error, Reason} -> erlang:error(Reason)
    end.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

-spec default_node() -> {ok, node()} | {error, term()}.
default_node() ->
    _ = application:load(ewpcap),
    case application:get_env(ewpcap, node) of
        {ok, Node} when is_atom(Node) -> {ok, Node};
        _ -> embedded_node(5)
    end.

%% The embedded daemon may be between two lives (its supervisor restarts
%% it), or the application may have stopped after too many restarts.
embedded_node(Tries) ->
    case application:ensure_all_started(ewpcap) of
        {ok, _} ->
            try
                {ok, ewpcap_daemon:node()}
            catch
                exit:{noproc, _} when Tries > 1 ->
                    timer:sleep(100),
                    embedded_node(Tries - 1);
                exit:{Reason, _} ->
                    {error, Reason}
            end;
        {error, Reason} ->
            {error, start_error(Reason)}
    end.

%% {ewpcap, {{shutdown, {failed_to_start_child, ewpcap_daemon, R}}, MFA}}
%% from application:ensure_all_started/1 is R.
start_error({ewpcap, {{shutdown, {failed_to_start_child, _, Reason}}, _}}) ->
    Reason;
start_error(Reason) ->
    Reason.

with_default_node(Fun) ->
    case default_node() of
        {ok, Node} -> Fun(Node);
        {error, _} = Error -> Error
    end.

%% A call to the daemon; a lost or impossible connection is
%% {error, nodedown}.
call(Node, Request) ->
    try
        gen_server:call({ewpcap, Node}, Request, infinity)
    catch
        exit:{{nodedown, _}, _} -> {error, nodedown};
        exit:{noconnection, _} -> {error, nodedown}
    end.

%% ebadf (closed handle) and badarg (a request the daemon refused) are
%% programmer errors.
reply({error, ebadf}) -> erlang:error(badarg);
reply({error, badarg}) -> erlang:error(badarg);
reply(Reply) -> Reply.

%% Spawns the guard, which makes the open call, and waits for its answer.
open_handle(Node, Dev, Options) ->
    Owner = self(),
    Tag = make_ref(),
    {Guard, MRef} =
        spawn_monitor(fun() -> guard(Owner, Tag, Node, Dev, Options) end),
    receive
        {Tag, {ok, Ref}} ->
            erlang:demonitor(MRef, [flush]),
            {ok, #ewpcap_resource{ref = Ref, res = {Node, Guard}}};
        {Tag, Reply} ->
            erlang:demonitor(MRef, [flush]),
            reply(Reply);
        {'DOWN', MRef, process, Guard, Reason} ->
            exit(Reason)
    end.

stop_guard(Guard, _Ref) when node(Guard) =/= erlang:node() ->
    %% a handle opened through rpc: "Guard" is the handle's pid on the
    %% daemon node, and the close call has already ended it
    ok;
stop_guard(Guard, Ref) ->
    MRef = erlang:monitor(process, Guard),
    Guard ! {close, Ref},
    receive
        {'DOWN', MRef, process, Guard, _} -> ok
    after ?CLOSE_WAIT ->
        erlang:demonitor(MRef, [flush]),
        ok
    end.

%%% -------------------------------------------------------------------
%%% The guard process
%%% -------------------------------------------------------------------

%% ewpcapd links the handle to the process that makes the open call: that
%% is the guard, so that the owner is never killed by a link it did not
%% ask for. The guard monitors the owner first, so an owner that exits
%% during the call still closes the handle.
guard(Owner, Tag, Node, Dev, Options) ->
    process_flag(trap_exit, true),
    OwnerMRef = erlang:monitor(process, Owner),
    Request =
        case Dev of
            {file, Path} -> {open_file, Path, Options, Owner};
            _ -> {open, Dev, Options, Owner}
        end,
    case call(Node, Request) of
        {ok, Ref} = Reply when is_reference(Ref) ->
            Owner ! {Tag, Reply},
            true = erlang:monitor_node(Node, true),
            guard_loop(Owner, OwnerMRef, Node, Ref);
        Reply ->
            Owner ! {Tag, Reply}
    end.

-spec guard_loop(pid(), reference(), node(), reference()) -> no_return().
guard_loop(Owner, OwnerMRef, Node, Ref) ->
    receive
        {'DOWN', OwnerMRef, process, Owner, _} ->
            % ewpcapd sees the link break and closes the handle
            exit(normal);
        {close, Ref} ->
            % closed by close/1; ewpcapd has already unlinked
            exit(normal);
        {'EXIT', Pid, _} when node(Pid) =:= Node ->
            lost(Owner, Ref);
        {nodedown, Node} ->
            lost(Owner, Ref);
        {'EXIT', _, normal} ->
            guard_loop(Owner, OwnerMRef, Node, Ref);
        {'EXIT', _, Reason} ->
            % an exit signal from elsewhere: behave as if not trapping
            exit(Reason);
        _ ->
            guard_loop(Owner, OwnerMRef, Node, Ref)
    end.

%% The connection to the daemon is gone, and with it the handle. A close/1
%% that raced with the loss needs no message.
-spec lost(pid(), reference()) -> no_return().
lost(Owner, Ref) ->
    receive
        {close, Ref} -> exit(normal)
    after 0 ->
        Owner ! {ewpcap_error, Ref, nodedown},
        exit(normal)
    end.
