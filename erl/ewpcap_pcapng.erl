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
%%% <li>Reading: reader/3 and read/1 (used by ewpcap_pcap_file, which
%%%     hands pcapng files over here): Section Header, Interface
%%%     Description, Enhanced, Simple and obsolete Packet Blocks, either
%%%     byte order, any `if_tsresol' (power of 10 or of 2) and
%%%     `if_tsoffset'; other blocks are skipped. Times come back in
%%%     nanoseconds.</li>
%%% </ul>
%%% `"-"' as a file name is standard output. Errors are `{error, Reason}'
%%% with `Reason' as ewpcap_pcap_file's; format_error/1 gives the text.
%%% @end
-module(ewpcap_pcapng).

-export([shb/1, idb/1, epb/4, isb/3, option/2]).
-export([open_write/2, add_interface/2, write/3, flush/1, close_write/1, close_write/2]).
-export([reader/3, read/1, info/1, format_error/1]).

-export_type([writer/0, reader/0, interface/0, stats/0, packet/0]).

-define(BYTE_ORDER_MAGIC, 16#1A2B3C4D).
-define(SHB, 16#0A0D0D0A).
-define(IDB, 1).
-define(PB, 2).   % obsolete Packet Block (read only)
-define(SPB, 3).
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
-define(IF_TSOFFSET, 14).
-define(ISB_IFRECV, 4).
-define(ISB_IFDROP, 5).
-define(ISB_USRDELIV, 8).

-define(FLUSH_BYTES, 65536).
-define(MAX_BLOCK, 16#4000000).

-record(writer, {
    io :: file:io_device() | standard_io, % the file, or standard output
    name :: string(),                      % for the messages
    unbuffered :: boolean(),               % flush after each call
    ifs = #{} :: #{non_neg_integer() => 6 | 9}, % interface id => if_tsresol
    buf = [] :: iolist(),                  % waiting to be written
    size = 0 :: non_neg_integer()          % bytes in buf
}).

-record(ng, {
    io :: file:io_device() | standard_io,
    name :: string(),
    endian :: big | little,
    ifs = #{} :: #{non_neg_integer() => {non_neg_integer(), non_neg_integer(),
                                         {pos_integer(), pos_integer()}, integer()}},
    pending = [] :: [{non_neg_integer(), binary()}] % blocks read ahead by reader/3
}).

-opaque writer() :: #writer{}.
%% A pcapng file being written.
-opaque reader() :: #ng{}.
%% A pcapng file being read.

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
                   delivered => non_neg_integer()}.
%% Counts of an interface: `isb_ifrecv', `isb_ifdrop', `isb_usrdeliv'.

-type packet() :: {Time :: non_neg_integer(), Length :: non_neg_integer(), Packet :: binary()}.
%% A packet: time in the interface's unit since the epoch, the length on
%% the wire, the captured bytes.

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

%% @doc An Interface Statistics Block of interface `IfId' at `Time' (in
%% the interface's unit): `isb_ifrecv', `isb_ifdrop', `isb_usrdeliv' for
%% the counts given.
-spec isb(non_neg_integer(), non_neg_integer(), stats()) -> iolist().
isb(IfId, Time, Stats) ->
    Counts = [{Code, <<N:64/native>>}
              || {Key, Code} <- [{recv, ?ISB_IFRECV}, {drop, ?ISB_IFDROP},
                                 {delivered, ?ISB_USRDELIV}],
                 N <- [maps:get(Key, Stats, undefined)], is_integer(N)],
    block(?ISB, [<<IfId:32/native, (Time bsr 32):32/native, (Time band 16#FFFFFFFF):32/native>>,
                 options(Counts)]).

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
                             put_bytes(Acc, epb(IfId, Time, Len, Packet))
                     end, W, Packets),
    case W1#writer.unbuffered orelse W1#writer.size >= ?FLUSH_BYTES of
        true -> flush_writer(W1);
        false -> {ok, W1}
    end.

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
                   Now = case maps:get(IfId, Ifs) of
                             6 -> os:system_time(microsecond);
                             9 -> os:system_time(nanosecond)
                         end,
                   put_bytes(Acc, isb(IfId, Now, S))
           end, W, [{I, S} || {I, S} <- Stats, is_map_key(I, Ifs)]),
    Result = flush_writer(W1),
    close_io(W1),
    case Result of
        {ok, _} -> ok;
        {error, Reason, _} -> {error, Reason}
    end.

%%% ===================================================================
%%% Reading
%%% ===================================================================

%% @doc A reader of the pcapng file open on `Io', of which `Read' (at
%% least 12 bytes, starting with the Section Header Block's type) has
%% been read already: reads up to the first Interface Description Block.
-spec reader(file:io_device() | standard_io, string(), binary()) ->
    {ok, reader()} | {error, ewpcap_pcap_file:reason()}.
reader(Io, Name, <<?SHB:32, _:32, Magic:4/binary, _/binary>> = Read) ->
    Endian = case Magic of
                 <<?BYTE_ORDER_MAGIC:32/big>> -> big;
                 <<?BYTE_ORDER_MAGIC:32/little>> -> little;
                 _ -> bad
             end,
    case Endian of
        bad ->
            {error, {Name, not_pcap}};
        _ ->
            R = #ng{io = Io, name = Name, endian = Endian},
            case shb_rest(R, Read) of
                {ok, R1} -> first_interface(R1, []);
                {error, _} = Error -> Error
            end
    end;
reader(_Io, Name, _) ->
    {error, {Name, truncated_header}}.

%% @doc The next packet: its interface, time in nanoseconds since the
%% epoch, length on the wire and bytes; `eof' at the end.
-spec read(reader()) ->
    {ok, {non_neg_integer(), integer(), non_neg_integer(), binary()}, reader()}
    | eof | {error, ewpcap_pcap_file:reason()}.
read(#ng{pending = [{Type, Body} | More]} = R) ->
    case block(R#ng{pending = More}, Type, Body) of
        {packet, P, R1} -> {ok, P, R1};
        {skip, R1} -> read(R1);
        {error, _} = Error -> Error
    end;
read(R) ->
    case next_block(R) of
        {ok, Type, Body, R1} ->
            case block(R1, Type, Body) of
                {packet, P, R2} -> {ok, P, R2};
                {skip, R2} -> read(R2);
                {error, _} = Error -> Error
            end;
        eof ->
            eof;
        {error, _} = Error ->
            Error
    end.

%% @doc The link type and snaplen of the first interface, and how many
%% interfaces were described so far.
-spec info(reader()) -> #{linktype := non_neg_integer(), snaplen := non_neg_integer(),
                          interfaces := non_neg_integer()}.
info(#ng{ifs = Ifs}) ->
    {LinkType, Snaplen, _, _} = maps:get(0, Ifs),
    #{linktype => LinkType, snaplen => Snaplen, interfaces => map_size(Ifs)}.

%% @doc The text of an error (as ewpcap_pcap_file:format_error/1).
-spec format_error(ewpcap_pcap_file:reason()) -> string().
format_error(Reason) ->
    ewpcap_pcap_file:format_error(Reason).

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

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
    case catch file:write(Io, Buf) of
        ok -> {ok, Empty};
        {error, Closed} when Closed =:= epipe; Closed =:= terminated -> {error, {Name, closed}, Empty};
        {error, Posix} -> {error, {Name, Posix}, Empty};
        _ -> {error, {Name, closed}, Empty}
    end.

close_io(#writer{io = standard_io}) -> ok;
close_io(#writer{io = Fd}) -> _ = file:close(Fd), ok.

%% The rest of the Section Header Block whose first bytes were read.
shb_rest(#ng{name = Name} = R, <<_:32, LenBytes:4/binary, _/binary>> = Read) ->
    Len = u32(R, LenBytes),
    Have = byte_size(Read),
    case Len >= 28 andalso Len rem 4 =:= 0 andalso Len =< ?MAX_BLOCK of
        false ->
            {error, {Name, {bogus_length, Len}}};
        true when Have =< Len ->
            case read_n(R, Len - Have) of
                {ok, Rest} when byte_size(Rest) =:= Len - Have -> {ok, R};
                {ok, _} -> {error, {Name, truncated_header}};
                {error, _} = Error -> Error
            end;
        true ->
            % more was read than the block: blocks follow in Read
            <<_:Len/binary, After/binary>> = Read,
            split_blocks(R, After)
    end.

%% Blocks already read (after a short SHB in the first bytes).
split_blocks(R, <<>>) ->
    {ok, R};
split_blocks(#ng{name = Name} = R, Bin) ->
    case Bin of
        <<T:4/binary, L:4/binary, _/binary>> ->
            Type = u32(R, T),
            Len = u32(R, L),
            case Len >= 12 andalso Len rem 4 =:= 0 andalso Len =< ?MAX_BLOCK of
                false ->
                    {error, {Name, {bogus_length, Len}}};
                true when byte_size(Bin) >= Len ->
                    BodyLen = Len - 12,
                    <<_:8/binary, Body:BodyLen/binary, _:4/binary, After/binary>> = Bin,
                    split_blocks(R#ng{pending = R#ng.pending ++ [{Type, Body}]}, After);
                true ->
                    case read_n(R, Len - byte_size(Bin)) of
                        {ok, More} when byte_size(More) =:= Len - byte_size(Bin) ->
                            split_blocks(R, <<Bin/binary, More/binary>>);
                        {ok, _} -> {error, {Name, truncated_record}};
                        {error, _} = Error -> Error
                    end
            end;
        _ ->
            case read_n(R, 8 - byte_size(Bin)) of
                {ok, More} when byte_size(More) =:= 8 - byte_size(Bin) ->
                    split_blocks(R, <<Bin/binary, More/binary>>);
                {ok, _} -> {error, {Name, truncated_record_header}};
                {error, _} = Error -> Error
            end
    end.

%% Reads blocks up to the first IDB; packet blocks before it are an
%% error, the blocks read stay pending for read/1.
first_interface(#ng{pending = Pending} = R, Seen) when Pending =/= [] ->
    [{Type, Body} | More] = Pending,
    first_interface_block(R#ng{pending = More}, Type, Body, Seen);
first_interface(#ng{name = Name} = R, Seen) ->
    case next_block(R) of
        {ok, Type, Body, R1} -> first_interface_block(R1, Type, Body, Seen);
        eof -> {error, {Name, no_interface}};
        {error, _} = Error -> Error
    end.

first_interface_block(#ng{name = Name} = R, ?IDB, Body, Seen) ->
    case block(R, ?IDB, Body) of
        {skip, R1} -> {ok, R1#ng{pending = lists:reverse(Seen) ++ R1#ng.pending}};
        {error, _} = Error -> Error;
        {packet, _, _} -> {error, {Name, no_interface}}
    end;
first_interface_block(#ng{name = Name}, Type, _Body, _Seen)
  when Type =:= ?EPB; Type =:= ?SPB; Type =:= ?PB ->
    {error, {Name, no_interface}};
first_interface_block(R, _Type, _Body, Seen) ->
    first_interface(R, Seen).

next_block(#ng{name = Name} = R) ->
    case read_n(R, 8) of
        {ok, <<>>} ->
            eof;
        {ok, <<T:4/binary, L:4/binary>>} ->
            case T of
                <<?SHB:32>> ->
                    % a new section: its byte order may differ
                    case read_n(R, 4) of
                        {ok, <<?BYTE_ORDER_MAGIC:32/big>>} -> rest_of_block(R#ng{endian = big, ifs = #{}}, ?SHB, L, 4);
                        {ok, <<?BYTE_ORDER_MAGIC:32/little>>} -> rest_of_block(R#ng{endian = little, ifs = #{}}, ?SHB, L, 4);
                        {ok, _} -> {error, {Name, not_pcap}};
                        {error, _} = Error -> Error
                    end;
                _ ->
                    rest_of_block(R, u32(R, T), L, 0)
            end;
        {ok, _} ->
            {error, {Name, truncated_record_header}};
        {error, _} = Error ->
            Error
    end.

rest_of_block(#ng{name = Name} = R, Type, L, Already) ->
    Len = u32(R, L),
    case Len >= 12 + Already andalso Len rem 4 =:= 0 andalso Len =< ?MAX_BLOCK of
        false ->
            {error, {Name, {bogus_length, Len}}};
        true ->
            case read_n(R, Len - 8 - Already) of
                {ok, Rest} when byte_size(Rest) =:= Len - 8 - Already ->
                    BodyLen = Len - 12 - Already,
                    <<Body:BodyLen/binary, Trailer:4/binary>> = Rest,
                    case u32(R, Trailer) of
                        Len -> {ok, Type, Body, R};
                        _ -> {error, {Name, {bogus_length, Len}}}
                    end;
                {ok, _} ->
                    {error, {Name, truncated_record}};
                {error, _} = Error ->
                    Error
            end
    end.

%% One block: {packet, {IfId, TimeNs, Len, Bytes}, R}, {skip, R} or an error.
block(#ng{ifs = Ifs} = R, ?IDB, <<LT:2/binary, _:2/binary, SL:4/binary, Opts/binary>>) ->
    Id = map_size(Ifs),
    {Resol, Offset} = if_options(R, Opts, {{10, 6}, 0}),
    {skip, R#ng{ifs = Ifs#{Id => {u16(R, LT), u32(R, SL), Resol, Offset}}}};
block(R, ?EPB, <<I:4/binary, Hi:4/binary, Lo:4/binary, C:4/binary, O:4/binary, Rest/binary>>) ->
    packet(R, u32(R, I), (u32(R, Hi) bsl 32) bor u32(R, Lo), u32(R, C), u32(R, O), Rest);
block(R, ?PB, <<I:2/binary, _:2/binary, Hi:4/binary, Lo:4/binary, C:4/binary, O:4/binary,
                Rest/binary>>) ->
    packet(R, u16(R, I), (u32(R, Hi) bsl 32) bor u32(R, Lo), u32(R, C), u32(R, O), Rest);
block(#ng{ifs = Ifs, name = Name} = R, ?SPB, <<O:4/binary, Rest/binary>>) ->
    case maps:find(0, Ifs) of
        {ok, {_, Snaplen, _, _}} ->
            Orig = u32(R, O),
            Cap = case Snaplen of
                      0 -> Orig;
                      _ -> min(Orig, Snaplen)
                  end,
            case Rest of
                <<Bytes:Cap/binary, _/binary>> -> {packet, {0, 0, Orig, Bytes}, R};
                _ -> {error, {Name, truncated_record}}
            end;
        error ->
            {error, {Name, no_interface}}
    end;
block(#ng{name = Name}, Type, _Body) when Type =:= ?IDB; Type =:= ?EPB; Type =:= ?PB ->
    {error, {Name, truncated_record}};
block(R, _Type, _Body) ->
    {skip, R}.

packet(#ng{ifs = Ifs, name = Name} = R, IfId, Stamp, Cap, Orig, Rest) ->
    case {maps:find(IfId, Ifs), Rest} of
        {{ok, {_, _, {Base, Exp}, Offset}}, <<Bytes:Cap/binary, _/binary>>} ->
            Ns = case Base of
                     10 when Exp =< 9 -> Stamp * pow(10, 9 - Exp);
                     10 -> Stamp div pow(10, Exp - 9);
                     2 -> (Stamp * 1000000000) bsr Exp
                 end,
            {packet, {IfId, Ns + Offset * 1000000000, Orig, Bytes}, R};
        {error, _} ->
            {error, {Name, no_interface}};
        _ ->
            {error, {Name, truncated_record}}
    end.

%% if_tsresol (bit 7: a power of 2, else of 10) and if_tsoffset (seconds)
if_options(R, <<C:2/binary, L:2/binary, Rest/binary>>, Acc) ->
    Code = u16(R, C),
    Len = u16(R, L),
    Padded = (Len + 3) band (bnot 3),
    case Rest of
        _ when Code =:= ?OPT_ENDOFOPT -> Acc;
        <<Value:Len/binary, _:(Padded - Len)/binary, More/binary>> ->
            {Resol, Offset} = Acc,
            Acc1 = case {Code, Value} of
                       {?IF_TSRESOL, <<1:1, E:7>>} -> {{2, E}, Offset};
                       {?IF_TSRESOL, <<0:1, E:7>>} -> {{10, E}, Offset};
                       {?IF_TSOFFSET, <<S:8/binary>>} -> {Resol, s64(R, S)};
                       _ -> Acc
                   end,
            if_options(R, More, Acc1);
        _ ->
            Acc
    end;
if_options(_R, _, Acc) ->
    Acc.

pow(B, E) -> pow(B, E, 1).
pow(_, 0, Acc) -> Acc;
pow(B, E, Acc) -> pow(B, E - 1, Acc * B).

u16(#ng{endian = big}, <<N:16/big>>) -> N;
u16(#ng{endian = little}, <<N:16/little>>) -> N.

u32(#ng{endian = big}, <<N:32/big>>) -> N;
u32(#ng{endian = little}, <<N:32/little>>) -> N.

s64(#ng{endian = big}, <<N:64/signed-big>>) -> N;
s64(#ng{endian = little}, <<N:64/signed-little>>) -> N.

read_n(_R, 0) ->
    {ok, <<>>};
read_n(#ng{io = Io, name = Name}, N) ->
    case file:read(Io, N) of
        {ok, Data} -> {ok, iolist_to_binary(Data)};
        eof -> {ok, <<>>};
        {error, Posix} -> {error, {Name, {read, Posix}}}
    end.
