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
%%% see daemon_node/0: the node named by the application environment variable
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
%%% <li>exits when close/1 is called, and when the daemon tells it that
%%%     another process closed the handle (an rpc close);</li>
%%% <li>relays the packets of a handle of one packet per message (see the
%%%     option `relay' of open/2);</li>
%%% <li>sends `{ewpcap_error, Ref, nodedown}' to the owner and exits when
%%%     the connection to the daemon is lost.</li>
%%% </ul>
%%%
%%% == Messages to the owner ==
%%% <ul>
%%% <li>`{ewpcap, Ref, DatalinkType, Time, Length, Packet}': a packet.
%%%     `Ref' is the socket's `ref'; `DatalinkType' the link layer
%%%     (`DLT_*' integer); `Time' `{MegaSecs, Secs, MicroSecs}' or, with
%%%     `{time_unit, microsecond}', `Secs * 1000000 + MicroSecs', or with
%%%     `{time_unit, nanosecond}' (the default of `{tstamp_precision, nano}'),
%%%     `Secs * 1000000000 + NanoSecs'; `Length'
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
%%% that close/1 closed) raise `badarg'; for a bad option, device or filter
%%% the exception carries error information naming it (the shell prints
%%% it; see ewpcap_opts:format_error/2). Runtime errors are returned, as
%%% `{error, reason()}' (see reason()).
%%%
%%% == How long a call waits ==
%%% A call waits for the daemon's reply without a timeout (a 400 KB filter
%%% may take many seconds to compile), but never past the loss of the
%%% connection: a daemon whose host freezes or vanishes is noticed by the
%%% distribution's tick, at the latest after `net_ticktime' seconds
%%% (kernel parameter, default 60; between 1 and 1.25 times that), and
%%% every call waiting on it then returns `{error, nodedown}'.
%%% @end
-module(ewpcap).

-include("ewpcap.hrl").

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
    daemon_node/0,
    node/0,
    dirty_scheduler_enabled/0
]).

-export_type([
    socket/0,
    ewpcap_resource/0,
    ewpcap_stat/0,
    reason/0,
    options/0,
    filter_options/0,
    open_option/0,
    filter_option/0,
    ifaddrs/0,
    info/0
]).

-define(INT_MAX, 16#7FFFFFFF).

-type socket() :: #ewpcap_resource{}.
%% A capture handle returned by open/0,1,2,3.

-type ewpcap_resource() :: socket().
%% The original library's name of socket().

-type ewpcap_stat() :: #ewpcap_stat{}.
%% The counters of stats/1, as the original library named them.

-type reason() ::
    string()
    | enomem
    | eagain
    | eof
    | nodedown
    | not_distributed
    | {no_ewpcapd, node()}
    | {bad_node_name, string()}
    | {bad_option, term()}
    | device_not_allowed
    | inject_disabled
    | too_many_handles
    | files_disabled
    | term().
%% Why a call failed:
%% <ul>
%% <li>`string()': libpcap's text (device, filter, savefile, capture);</li>
%% <li>`enomem': a filter not shorter than its `limit';</li>
%% <li>`eagain': read/2 timed out; `eof': a savefile was read to its end;</li>
%% <li>`nodedown': the daemon's node cannot be reached, or was lost;</li>
%% <li>`not_distributed': a call naming a daemon node from a node that is
%%     not distributed (start it with `-sname'/`-name', or use the
%%     embedded daemon through the functions without a node);</li>
%% <li>`{no_ewpcapd, Node}': `Node' is up but runs no ewpcapd (nothing
%%     registered as `ewpcap' there; for example `node()' by mistake);</li>
%% <li>`{bad_option, Key}': an unknown option;</li>
%% <li>`device_not_allowed', `inject_disabled', `too_many_handles',
%%     `files_disabled' (and the other refusals of docs/PROTOCOL.md): the
%%     daemon's policy;</li>
%% <li>when the embedded daemon cannot be started: `{ewpcapd, {enoent,
%%     Path}}', `{ewpcapd, timeout}', `{ewpcapd, pang}',
%%     `{ewpcapd_exit, Status}' or `{distribution, Reason}' (see
%%     ewpcap_daemon:start_link/0).</li>
%% </ul>

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
    | {to_ms, immediate | infinity | 0..?INT_MAX}
    | {immediate, boolean()}
    | {buffer, -16#80000000..?INT_MAX}
    | {monitor, boolean()}
    | {share, boolean()}
    | {time_unit, timestamp | microsecond | nanosecond}
    | {tstamp_precision, micro | nano}
    | {batch, 1..65536}
    | {relay, boolean()}
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
%% <li>`{to_ms, T}': old name of `{timeout, T}'; a `timeout' option beats
%%     it wherever it stands, as in the original.</li>
%% <li>`{immediate, Bool}': overrides the immediate mode chosen by
%%     `timeout'; `{immediate, false}' with no `timeout' or `to_ms' means
%%     a 500 ms timeout, as in the original.</li>
%% <li>`{buffer, N}': `pcap_set_buffer_size' when `N > 0'; by default
%%     ewpcapd asks for 16 MiB, 32 MiB in immediate mode.</li>
%% <li>`{monitor, Bool}': monitor mode (rfmon) on wireless devices that
%%     support it; default `false'.</li>
%% <li>`{share, Bool}': `true' (the default): a live handle joins the
%%     capture of an open handle of the same device and options (one
%%     kernel ring; its filter runs in ewpcapd on the packets libpcap
%%     hands over, see the README's Shared captures). `false': a capture
%%     of its own, its filter the kernel's, compiled against its live
%%     `pcap_t', as in the classic NIF: the only way to `inbound',
%%     `outbound', `ifindex' and the other filters that read kernel
%%     metadata (refused in a shared capture with `{error, Text}'), and
%%     `udp' matching 802.1Q-tagged frames. Its ring counts against
%%     `--max-ring-mb' and `--max-node-ring-mb'.</li>
%% <li>`{time_unit, timestamp | microsecond | nanosecond}': format of
%%     `Time' in packet messages: `{MegaSecs, Secs, MicroSecs}',
%%     `Secs * 1000000 + MicroSecs' or `Secs * 1000000000 + NanoSecs';
%%     default `timestamp', or `nanosecond' with `{tstamp_precision, nano}'
%%     (a tuple of microseconds cannot hold nanoseconds). A unit finer than
%%     the precision is padded with zeros (micro precision in nanoseconds:
%%     multiples of 1000), a coarser one truncated.</li>
%% <li>`{tstamp_precision, micro | nano}': the precision libpcap stamps
%%     packets with (`pcap_set_tstamp_precision' before activation; for
%%     savefiles, `pcap_fopen_offline_with_tstamp_precision', which scales
%%     the file's stamps); default `micro'. A `{dump, Path}' savefile of a
%%     nano capture has the nanosecond magic `0xa1b23c4d'. A device that
%%     cannot stamp in nanoseconds fails the open with
%%     `{error, "That device doesn't support that time stamp precision"}'.</li>
%% <li>`{batch, N}': up to N packets per message,
%%     `{ewpcap_batch, Ref, DatalinkType, [{Time, Length, Packet}]}', sent
%%     when full and after each read from the kernel ring (so it adds no
%%     delay); default 1: one `{ewpcap, ...}' message per packet.</li>
%% <li>`{relay, Bool}': with one packet per message, `true' (the default,
%%     except in immediate mode) has ewpcapd send the packets in batches to
%%     the handle's guard process on this node, which hands them to the
%%     owner one `{ewpcap, ...}' message each, in order: the owner sees the
%%     same messages, the node reads a few large distribution messages
%%     instead of one per packet (a third to a half of the CPU per packet;
%%     README, The relay). `false': ewpcapd sends each packet to the owner
%%     itself. The application environment's `relay' sets the default
%%     (`{timeout, immediate}' handles go without unless given
%%     `{relay, true}'). Not sent to ewpcapd, which ignores it over rpc.</li>
%% <li>`{dump, Path}': record the packets to a pcap savefile on the
%%     daemon's host instead of sending them (the daemon's `--files DIR'
%%     confines `Path'; relative paths are taken in DIR).</li>
%% <li>`{filter, Filter}': a pcap filter applied once the handle is active,
%%     with the filter options; default none (every packet).</li>
%% <li>the filter options, see filter_option().</li>
%% </ul>

-type options() :: [open_option() | promisc | immediate | monitor | share | relay | optimize].
%% Options of open/2,3. As with proplists, a bare atom `Key' stands for
%% `{Key, true}' and the first occurrence of an option counts.

-type filter_options() :: [filter_option() | optimize] | options().
%% Options of filter/3. The options of open/2 are accepted too (so the
%% list given to open/2 may be given again), checked and ignored.

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
-spec open() -> {ok, socket()} | {error, reason()}.
open() ->
    open(<<>>, []).

%% @doc Opens a device with the default options.
%% Same as `open(Dev, [])'.
-spec open(iodata() | {file, iodata()}) -> {ok, socket()} | {error, reason()}.
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
%% `{error, nodedown}' when the daemon cannot be reached (see reason()).
%% Raises `badarg' (with error information naming the option) when `Dev'
%% is not iodata or an option has a value of the wrong type.
-spec open(iodata() | {file, iodata()}, options()) -> {ok, socket()} | {error, reason()}.
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
%% Also returns `{error, not_distributed}' when this node is not
%% distributed and `{error, {no_ewpcapd, Node}}' when `Node' runs no
%% ewpcapd.
-spec open(node(), iodata() | {file, iodata()}, options()) -> {ok, socket()} | {error, reason()}.
open(Node, Dev, Options) when is_atom(Node) ->
    DevBin = ewpcap_opts:device(Dev),
    case ewpcap_opts:open(Options) of
        {ok, Norm} -> open_handle(Node, DevBin, Norm);
        {error, _} = Error -> Error
    end;
open(_, _, _) ->
    erlang:error(badarg).

%% @doc Closes the handle: capture stops and the daemon frees everything.
%% Packets already delivered stay in the owner's mailbox; packets that
%% read/1,2 kept from a batch are erased from the caller's process
%% dictionary.
%%
%% The first close/1 of a handle returns `ok', from any process, whatever
%% happened to the handle before: open, or already closed because its
%% owner exited or its daemon was lost (`nodedown'). A second close/1
%% raises `badarg', in every case, as in the original; a close made
%% through the daemon's rpc (`rpc:call(Node, ewpcap, close, [Socket])')
%% counts as the first. (A socket sent to another node, or opened through
%% rpc without this library, is closed by the daemon's word alone:
%% `badarg' when it does not know the handle.)
-spec close(socket()) -> ok.
close(#ewpcap_resource{ref = Ref, res = {Node, Guard, State}}) when
    is_reference(Ref), is_atom(Node), is_pid(Guard), State =/= undefined
->
    _ = erase({ewpcap_batch, Ref}),
    case ewpcap_handle:close(Node, Guard, Ref, State) of
        ok -> ok;
        badarg -> erlang:error(badarg)
    end;
close(#ewpcap_resource{ref = Ref, res = {Node, Guard}}) when
    is_reference(Ref), is_atom(Node), is_pid(Guard)
->
    _ = erase({ewpcap_batch, Ref}),
    case ewpcap_handle:close(Node, Guard, Ref, none) of
        ok -> ok;
        badarg -> erlang:error(badarg)
    end;
close(_) ->
    erlang:error(badarg).

%% @doc Sets a filter with the default filter options.
%% Same as `filter(Socket, Filter, [])'.
-spec filter(socket(), iodata()) -> ok | {error, reason()}.
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
%% The options of open/2 may be given too: they are checked as open/2
%% checks them and ignored (the original ignored them).
%%
%% Returns `ok', `{error, String}' with libpcap's text, `{error, enomem}'
%% when the filter is too long (the daemon is not contacted),
%% `{error, {bad_option, Key}}' for an unknown option or
%% `{error, nodedown}'. Raises `badarg' for a closed handle, a filter that
%% is not iodata or an option value of the wrong type.
-spec filter(socket(), iodata(), filter_options()) -> ok | {error, reason()}.
filter(#ewpcap_resource{ref = Ref, res = Res}, Filter, Options) when
    is_reference(Ref), is_tuple(Res), is_atom(element(1, Res))
->
    Node = element(1, Res),
    case ewpcap_opts:filter(Filter, Options) of
        {ok, Bin, Norm} -> reply(ewpcap_handle:synced(Res, call(Node, {filter, Ref, Bin, Norm})));
        {error, _} = Error -> Error
    end;
filter(_, _, _) ->
    erlang:error(badarg).

%% @doc Waits for the next packet of the handle. Same as
%% `read(Socket, infinity)'.
-spec read(socket()) -> {ok, binary()} | {error, reason()}.
read(Socket) ->
    read(Socket, infinity).

%% @doc Waits up to `Timeout' milliseconds for the next packet of the
%% handle: a selective receive of the owner's messages (call it from the
%% owner).
%%
%% Returns `{ok, Packet}' (the captured bytes only), `{error, Reason}' for
%% an `{ewpcap_error, Ref, Reason}' message (a libpcap string or
%% `nodedown'), `{error, eof}' at the end of a savefile, or
%% `{error, eagain}' when no packet came in time.
%%
%% Once read has returned `{error, eof}', or the daemon was lost, no packet
%% can come any more: read then returns what is still in the mailbox and
%% after that the same error again, at once, instead of waiting.
%%
%% With `{batch, N}', read takes the first packet of an
%% `{ewpcap_batch, ...}' message and keeps the rest, in order, in the
%% process dictionary under `{ewpcap_batch, Ref}' for the next reads
%% (close/1 erases them).
-spec read(socket(), timeout()) -> {ok, binary()} | {error, reason()}.
read(#ewpcap_resource{ref = Ref, res = Res}, Timeout) when
    is_reference(Ref),
    (Timeout =:= infinity orelse (is_integer(Timeout) andalso Timeout >= 0))
->
    case erase({ewpcap_batch, Ref}) of
        [{_Time, _Length, Packet} | Rest] ->
            Rest =/= [] andalso put({ewpcap_batch, Ref}, Rest),
            {ok, Packet};
        _ ->
            ewpcap_handle:read(Ref, Res, Timeout)
    end;
read(_, _) ->
    erlang:error(badarg).

%% @doc Sends a packet on the handle's interface (`pcap_sendpacket(3PCAP)').
%%
%% Returns `ok', `{error, String}' with libpcap's text or
%% `{error, nodedown}'. Raises `badarg' for a closed handle or a packet
%% that is not iodata.
-spec write(socket(), iodata()) -> ok | {error, reason()}.
write(#ewpcap_resource{ref = Ref, res = Res}, Packet) when
    is_reference(Ref), is_tuple(Res), is_atom(element(1, Res))
->
    Node = element(1, Res),
    Bin = iolist_to_binary(Packet),
    reply(call(Node, {write, Ref, Bin}));
write(_, _) ->
    erlang:error(badarg).

%% @doc Packet counters of the handle (`pcap_stats(3PCAP)'):
%% `#ewpcap_stat{recv, drop, ifdrop, capt}', `capt' always 0.
%%
%% Returns `{ok, #ewpcap_stat{}}', `{error, String}' or
%% `{error, nodedown}'. Raises `badarg' for a closed handle.
-spec stats(socket()) -> {ok, ewpcap_stat()} | {error, reason()}.
stats(#ewpcap_resource{ref = Ref, res = Res}) when
    is_reference(Ref), is_tuple(Res), is_atom(element(1, Res))
->
    reply(ewpcap_handle:synced(Res, call(element(1, Res), {stats, Ref})));
stats(_) ->
    erlang:error(badarg).

%% @doc The default device of the default daemon: the first device of
%% `pcap_findalldevs'.
%% Returns `{ok, Name}', `{error, String}' or `{error, nodedown}'.
-spec dev() -> {ok, string()} | {error, reason()}.
dev() ->
    with_default_node(fun dev/1).

%% @doc The default device of the daemon `Node'; see dev/0.
-spec dev(node()) -> {ok, string()} | {error, reason()}.
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
-spec getifaddrs() -> {ok, ifaddrs()} | {error, reason()}.
getifaddrs() ->
    with_default_node(fun getifaddrs/1).

%% @doc The interfaces of the daemon `Node'; see getifaddrs/0.
-spec getifaddrs(node()) -> {ok, ifaddrs()} | {error, reason()}.
getifaddrs(Node) when is_atom(Node) ->
    call(Node, getifaddrs);
getifaddrs(_) ->
    erlang:error(badarg).

%% @doc The default daemon's description of itself:
%% `{ok, [{node, Node}, {os_pid, Pid}, {handles, Handles}, {nodes, Nodes}]}'
%% where each handle is a property list with `ref', `owner', `link',
%% `relay' (the guard that relays its packets, or `false'), `device', `filter', `snaplen', `datalink', `packets', `bytes', `drops'
%% and `queue' (see docs/PROTOCOL.md), or `{error, nodedown}'.
-spec info() -> {ok, info()} | {error, reason()}.
info() ->
    with_default_node(fun info/1).

%% @doc The description of the daemon `Node'; see info/0.
-spec info(node()) -> {ok, info()} | {error, reason()}.
info(Node) when is_atom(Node) ->
    call(Node, info);
info(_) ->
    erlang:error(badarg).

%% @doc The default daemon node: the application environment variable
%% `node' of `ewpcap' when it is set, else the node of the embedded daemon,
%% started (with the ewpcap application) when it is not running yet.
%% Raises an error with the reason when the embedded daemon cannot be
%% started.
-spec daemon_node() -> node().
daemon_node() ->
    case default_node() of
        {ok, Node} -> Node;
        {error, Reason} -> erlang:error(Reason)
    end.

%% @doc The same as daemon_node/0, under its first name (kept for the code
%% that calls it; inside a module, `ewpcap:node()' must be written
%% qualified, as `node/0' is also a BIF).
-spec node() -> node().
node() ->
    daemon_node().

%% @doc Always `false': there is no NIF, so no dirty scheduler runs ewpcap
%% code. (In the original, whether the NIF ran `pcap_compile' on dirty
%% schedulers.) Here no filter ever runs in the BEAM: ewpcapd compiles
%% long filters on its own worker threads, and a call only waits for the
%% answer.
-spec dirty_scheduler_enabled() -> false.
dirty_scheduler_enabled() ->
    false.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

-spec default_node() -> {ok, node()} | {error, reason()}.
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
                {ok, ewpcap_daemon:daemon_node()}
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

call(Node, Request) ->
    ewpcap_handle:call(Node, Request).

reply(Reply) ->
    ewpcap_handle:reply(Reply).

open_handle(Node, Dev, Options) ->
    ewpcap_handle:open(Node, Dev, Options).
