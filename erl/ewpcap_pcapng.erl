%%% @doc pcapng files in Erlang: the PCAP Next Generation format
%%% (draft-ietf-opsawg-pcapng), which tshark, Wireshark, capinfos and
%%% libpcap (so tcpdump) read, written with one Interface Description
%%% Block per interface so that one file can hold captures of several
%%% interfaces and hosts.
%%%
%%% <ul>
%%% <li>Encoding, pure: shb/1 (Section Header Block), idb/1 (Interface
%%%     Description Block), epb/4 (Enhanced Packet Block), isb/3
%%%     (Interface Statistics Block). Every block has its total length at
%%%     both ends and its body padded to 32 bits; options are padded to 32
%%%     bits and end with `opt_endofopt'; host byte order, the byte-order
%%%     magic `0x1A2B3C4D' telling readers which.</li>
%%% <li>Writing, streaming: open_write/2 writes the Section Header Block
%%%     at once; add_interface/2 writes an Interface Description Block and
%%%     returns its id (0, 1, ... in the order added); write/3 adds the
%%%     packets of one interface; close_write/2 writes an Interface
%%%     Statistics Block per interface whose counts are known and closes
%%%     the file. Buffered per 64 KiB, or every call with `unbuffered'.
%%%     The packets are those of ewpcap's messages with an integer
%%%     `time_unit': `{Time, Length, Packet}', `Time' in the interface's
%%%     unit (`if_tsresol' 6: microseconds since the epoch, 9:
%%%     nanoseconds).</li>
%%% <li>Reading: ewpcap_pcapng_read (ewpcap_pcap_file hands pcapng
%%%     files over to it).</li>
%%% </ul>
%%% `"-"' as a file name is standard output. Errors are `{error, Reason}'
%%% with `Reason' as ewpcap_pcap_file's; format_error/1 gives the text.
%%% @end
-module(ewpcap_pcapng).

-export([shb/1, idb/1, epb/4, epb/5, isb/3, option/2]).
-export([open_write/2, add_interface/2, write/3, write_stats/3, flush/1, close_write/1, close_write/2]).
-export([format_error/1]).

-export_type([writer/0, interface/0, stats/0, packet/0]).

-define(BYTE_ORDER_MAGIC, 16#1A2B3C4D).
-define(SHB, 16#0A0D0D0A).
-define(IDB, 1).
-define(ISB, 5).
-define(EPB, 6).

-define(OPT_ENDOFOPT, 0).
-define(OPT_COMMENT, 1).
-define(SHB_HARDWARE, 2).
-define(SHB_OS, 3).
-define(SHB_USERAPPL, 4).
-define(IF_NAME, 2).
-define(IF_DESCRIPTION, 3).
-define(IF_TSRESOL, 9).
-define(IF_FILTER, 11).
-define(IF_OS, 12).
-define(ISB_IFRECV, 4).
-define(ISB_IFDROP, 5).
-define(ISB_USRDELIV, 8).

-define(FLUSH_BYTES, 65536).

-record(writer, {
    io :: file:io_device() | standard_io, % the file, or standard output
    name :: string(),                      % for the messages
    unbuffered :: boolean(),               % flush after each call
    ifs = #{} :: #{non_neg_integer() => 6 | 9}, % interface id => if_tsresol
    buf = [] :: iolist(),                  % waiting to be written
    size = 0 :: non_neg_integer()          % bytes in buf
}).


-opaque writer() :: #writer{}.
%% A pcapng file being written.

-type interface() :: #{linktype := non_neg_integer(),
                       snaplen => non_neg_integer(),
                       name => unicode:chardata(),
                       description => unicode:chardata(),
                       tsresol => 6 | 9,
                       filter => unicode:chardata(),
                       os => unicode:chardata(),
                       comment => unicode:chardata()}.
%% An interface: its link type (a savefile LINKTYPE_ value), snaplen
%% (default 0: none), and the options `if_name' (ewpcap_dump: `Node:Device'),
%% `if_description', `if_tsresol' (6, the default: microseconds; 9:
%% nanoseconds), `if_filter' (a pcap-filter(7) text, filter type 0),
%% `if_os' and `opt_comment'. An empty option is left out.

-type stats() :: #{recv => non_neg_integer(), drop => non_neg_integer(),
                   delivered => non_neg_integer(), comment => unicode:chardata()}.
%% Counts of an interface: `isb_ifrecv', `isb_ifdrop', `isb_usrdeliv', and
%% an `opt_comment' (ewpcap_dump: why the interface's capture ended).

-type packet() :: {Time :: non_neg_integer(), Length :: non_neg_integer(), Packet :: binary()}
                | {Time :: non_neg_integer(), Length :: non_neg_integer(), Packet :: binary(),
                   Comment :: unicode:chardata()}.
%% A packet: time in the interface's unit since the epoch, the length on
%% the wire, the captured bytes; an `opt_comment' when given (tshark shows
%% it as `frame.comment').

%%% ===================================================================
%%% Encoding
%%% ===================================================================

%% @doc A Section Header Block: version 1.0, section length -1 (not
%% given), options `shb_hardware', `shb_os', `shb_userappl' and
%% `opt_comment' when given.
-spec shb(#{hardware => unicode:chardata(), os => unicode:chardata(),
            userappl => unicode:chardata(), comment => unicode:chardata()}) -> iolist().
shb(Opts) ->
    Options = options([{?OPT_COMMENT, maps:get(comment, Opts, <<>>)},
                       {?SHB_HARDWARE, maps:get(hardware, Opts, <<>>)},
                       {?SHB_OS, maps:get(os, Opts, <<>>)},
                       {?SHB_USERAPPL, maps:get(userappl, Opts, <<>>)}]),
    block(?SHB, [<<?BYTE_ORDER_MAGIC:32/native, 1:16/native, 0:16/native,
                   -1:64/signed-native>>, Options]).

%% @doc An Interface Description Block (see interface()).
-spec idb(interface()) -> iolist().
idb(#{linktype := LinkType} = If) ->
    Filter = case maps:get(filter, If, <<>>) of
                 <<>> -> <<>>;
                 "" -> <<>>;
                 F -> [0, F]     % filter type 0: a libpcap filter string
             end,
    Options = options([{?OPT_COMMENT, maps:get(comment, If, <<>>)},
                       {?IF_NAME, maps:get(name, If, <<>>)},
                       {?IF_DESCRIPTION, maps:get(description, If, <<>>)},
                       {?IF_TSRESOL, <<(maps:get(tsresol, If, 6))>>},
                       {?IF_FILTER, Filter},
                       {?IF_OS, maps:get(os, If, <<>>)}]),
    block(?IDB, [<<LinkType:16/native, 0:16, (maps:get(snaplen, If, 0)):32/native>>, Options]).

%% @doc An Enhanced Packet Block of interface `IfId': `Time' in the
%% interface's unit, `Len' the length on the wire, no options.
-spec epb(non_neg_integer(), non_neg_integer(), non_neg_integer(), binary()) -> iolist().
epb(IfId, Time, Len, Packet) ->
    Cap = byte_size(Packet),
    block(?EPB, [<<IfId:32/native, (Time bsr 32):32/native, (Time band 16#FFFFFFFF):32/native,
                   Cap:32/native, Len:32/native>>, Packet, pad(Cap)]).

%% @doc An Enhanced Packet Block with the option `opt_comment' (none when
%% `Comment' is empty).
-spec epb(non_neg_integer(), non_neg_integer(), non_neg_integer(), binary(),
          unicode:chardata()) -> iolist().
epb(IfId, Time, Len, Packet, Comment) ->
    Cap = byte_size(Packet),
    block(?EPB, [<<IfId:32/native, (Time bsr 32):32/native, (Time band 16#FFFFFFFF):32/native,
                   Cap:32/native, Len:32/native>>, Packet, pad(Cap),
                 options([{?OPT_COMMENT, Comment}])]).

%% @doc An Interface Statistics Block of interface `IfId' at `Time' (in
%% the interface's unit): `isb_ifrecv', `isb_ifdrop', `isb_usrdeliv' for
%% the counts given, and `opt_comment'.
-spec isb(non_neg_integer(), non_neg_integer(), stats()) -> iolist().
isb(IfId, Time, Stats) ->
    Counts = [{Code, <<N:64/native>>}
              || {Key, Code} <- [{recv, ?ISB_IFRECV}, {drop, ?ISB_IFDROP},
                                 {delivered, ?ISB_USRDELIV}],
                 N <- [maps:get(Key, Stats, undefined)], is_integer(N)],
    block(?ISB, [<<IfId:32/native, (Time bsr 32):32/native, (Time band 16#FFFFFFFF):32/native>>,
                 options([{?OPT_COMMENT, maps:get(comment, Stats, <<>>)} | Counts])]).

%% @doc One option: code, length, the value padded to 32 bits. A binary
%% is the value's bytes as they are (a count, a time, UTF-8 text); a
%% list is text, written in UTF-8.
-spec option(0..16#FFFF, binary() | unicode:chardata()) -> iolist().
option(Code, Value) ->
    Bin = value(Value),
    Len = byte_size(Bin),
    [<<Code:16/native, Len:16/native>>, Bin, pad(Len)].

%%% ===================================================================
%%% Writing
%%% ===================================================================

%% @doc Opens `Name' (`"-"': standard output) and writes the Section
%% Header Block at once. Options: `unbuffered' (default `false': written
%% per 64 KiB), `userappl', `os', `hardware', `comment' (the section's
%% options; default `os' and `hardware' those of this host).
-spec open_write(string(), #{unbuffered => boolean(), userappl => unicode:chardata(),
                             os => unicode:chardata(), hardware => unicode:chardata(),
                             comment => unicode:chardata()}) ->
    {ok, writer()} | {error, ewpcap_pcap_file:reason()}.
open_write(Name, Opts) ->
    Io = case Name of
             "-" ->
                 ok = io:setopts(standard_io, [binary, {encoding, latin1}]),
                 {ok, standard_io};
             _ ->
                 file:open(Name, [write, raw, binary])
         end,
    case Io of
        {ok, Fd} ->
            W = #writer{io = Fd, name = Name, unbuffered = maps:get(unbuffered, Opts, false)},
            Shb = shb(maps:merge(#{os => host_os(), hardware => host_hardware()}, Opts)),
            case flush_writer(put_bytes(W, Shb)) of
                {ok, _} = Ok -> Ok;
                {error, Reason, W1} -> close_io(W1), {error, Reason}
            end;
        {error, Posix} ->
            {error, {Name, Posix}}
    end.

%% @doc Writes an Interface Description Block (at once, so a capture that
%% ends before its first packet leaves a valid file) and returns the
%% interface's id for write/3.
-spec add_interface(writer(), interface()) ->
    {ok, non_neg_integer(), writer()} | {error, ewpcap_pcap_file:reason(), writer()}.
add_interface(#writer{ifs = Ifs} = W, If) ->
    Id = map_size(Ifs),
    Resol = maps:get(tsresol, If, 6),
    (Resol =:= 6 orelse Resol =:= 9) orelse error(badarg, [W, If]),
    case flush_writer(put_bytes(W#writer{ifs = Ifs#{Id => Resol}}, idb(If))) of
        {ok, W1} -> {ok, Id, W1};
        {error, _, _} = Error -> Error
    end.

%% @doc Adds Enhanced Packet Blocks of interface `IfId'; writes them out
%% when the buffer passes 64 KiB or the writer is unbuffered.
-spec write(writer(), non_neg_integer(), [packet()]) ->
    {ok, writer()} | {error, ewpcap_pcap_file:reason(), writer()}.
write(#writer{ifs = Ifs} = W, IfId, Packets) ->
    is_map_key(IfId, Ifs) orelse error(badarg, [W, IfId, Packets]),
    W1 = lists:foldl(fun({Time, Len, Packet}, Acc) ->
                             put_bytes(Acc, epb(IfId, Time, Len, Packet));
                        ({Time, Len, Packet, Comment}, Acc) ->
                             put_bytes(Acc, epb(IfId, Time, Len, Packet, Comment))
                     end, W, Packets),
    case W1#writer.unbuffered orelse W1#writer.size >= ?FLUSH_BYTES of
        true -> flush_writer(W1);
        false -> {ok, W1}
    end.

%% @doc Writes an Interface Statistics Block of interface `IfId' now (in
%% the middle of the file: e.g. the interface's capture has ended while
%% others go on), and what is buffered.
-spec write_stats(writer(), non_neg_integer(), stats()) ->
    {ok, writer()} | {error, ewpcap_pcap_file:reason(), writer()}.
write_stats(#writer{ifs = Ifs} = W, IfId, Stats) ->
    is_map_key(IfId, Ifs) orelse error(badarg, [W, IfId, Stats]),
    flush_writer(put_bytes(W, isb(IfId, now(maps:get(IfId, Ifs)), Stats))).

%% @doc Writes out what is buffered.
-spec flush(writer()) -> {ok, writer()} | {error, ewpcap_pcap_file:reason(), writer()}.
flush(W) ->
    flush_writer(W).

%% @equiv close_write(W, [])
-spec close_write(writer()) -> ok | {error, ewpcap_pcap_file:reason()}.
close_write(W) ->
    close_write(W, []).

%% @doc Writes an Interface Statistics Block for each `{IfId, Stats}'
%% (stamped now), what is buffered, and closes the file (not standard
%% output).
-spec close_write(writer(), [{non_neg_integer(), stats()}]) ->
    ok | {error, ewpcap_pcap_file:reason()}.
close_write(#writer{ifs = Ifs} = W, Stats) ->
    W1 = lists:foldl(
           fun({IfId, S}, Acc) ->
                   put_bytes(Acc, isb(IfId, now(maps:get(IfId, Ifs)), S))
           end, W, [{I, S} || {I, S} <- Stats, is_map_key(I, Ifs)]),
    Result = flush_writer(W1),
    close_io(W1),
    case Result of
        {ok, _} -> ok;
        {error, Reason, _} -> {error, Reason}
    end.

%% @doc The text of an error (as ewpcap_pcap_file:format_error/1).
-spec format_error(ewpcap_pcap_file:reason()) -> string().
format_error(Reason) ->
    ewpcap_pcap_file:format_error(Reason).

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

now(6) -> os:system_time(microsecond);
now(9) -> os:system_time(nanosecond).

block(Type, Body) ->
    Len = iolist_size(Body) + 12,
    [<<Type:32/native, Len:32/native>>, Body, <<Len:32/native>>].

%% Options with a value, then opt_endofopt; none: no options at all.
options(Opts) ->
    case [option(Code, B) || {Code, V} <- Opts, B <- [value(V)], B =/= <<>>] of
        [] -> [];
        Encoded -> [Encoded, <<?OPT_ENDOFOPT:16, 0:16>>]
    end.

value(V) when is_binary(V) ->
    V;
value(V) ->
    case unicode:characters_to_binary(V) of
        B when is_binary(B) -> B;
        _ -> error(badarg, [V])
    end.

pad(Len) ->
    case Len rem 4 of
        0 -> <<>>;
        R -> <<0:((4 - R) * 8)>>
    end.

host_os() ->
    {Family, Name} = os:type(),
    Version = case os:version() of
                  {A, B, C} -> io_lib:format(" ~b.~b.~b", [A, B, C]);
                  V when is_list(V) -> [$\s | V]
              end,
    unicode:characters_to_binary([string:titlecase(atom_to_list(Name)), Version,
                                  " (", atom_to_list(Family), ")"]).

host_hardware() ->
    unicode:characters_to_binary(erlang:system_info(system_architecture)).

put_bytes(#writer{buf = Buf, size = Size} = W, Bytes) ->
    W#writer{buf = [Buf, Bytes], size = Size + iolist_size(Bytes)}.

flush_writer(#writer{size = 0} = W) ->
    {ok, W};
flush_writer(#writer{io = Io, buf = Buf, name = Name} = W) ->
    Empty = W#writer{buf = [], size = 0},
    case ewpcap_pcap_file:write_io(Io, Name, Buf) of
        ok -> {ok, Empty};
        {error, Reason} -> {error, Reason, Empty}
    end.

close_io(#writer{io = standard_io}) -> ok;
close_io(#writer{io = Fd}) -> _ = file:close(Fd), ok.
