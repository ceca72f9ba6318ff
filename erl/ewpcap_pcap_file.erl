%%% @doc pcap savefiles in Erlang: the classic libpcap format (a 24-byte
%%% global header, then a 16-byte record header and the bytes of each
%%% packet), as tcpdump, tshark and Wireshark read and write it.
%%%
%%% <ul>
%%% <li>Encoding: header/3,4 and record/3,4, pure.</li>
%%% <li>Writing: open_write/2, write/3 and close_write/1, a buffered
%%%     writer (64 KiB, or every packet with `unbuffered') that writes the
%%%     global header at once (a capture that ends before its first packet
%%%     still leaves a valid, empty savefile), in host byte order with
%%%     microsecond timestamps (magic `0xa1b2c3d4'), or nanosecond ones
%%%     (`0xa1b23c4d') with `{precision, nano}'. The packets are those of
%%%     ewpcap's messages with `{time_unit, microsecond}' (or
%%%     `nanosecond'): `{Time, Length, Packet}'. pcapng is written by
%%%     ewpcap_pcapng.</li>
%%% <li>Reading: open_read/1,2, read/1 (a record), read/2 (many: a
%%%     chunk at a time from a pcap file), close_read/1 and read_file/1: both
%%%     byte orders, micro- and nanosecond files (magic `0xa1b2c3d4' and
%%%     `0xa1b23c4d'), and pcapng files (through ewpcap_pcapng_read: the link
%%%     type and snaplen are those of the first interface, the packets
%%%     those of every interface); times come back in microseconds, or
%%%     nanoseconds with `{precision, nano}'.</li>
%%% </ul>
%%% `"-"' as a file name is standard output or input. Errors are
%%% `{error, Reason}'; format_error/1 gives the text.
%%%
%%% Live captures can also be recorded by the daemon itself on its host,
%%% see the `{dump, Path}' option of ewpcap:open/2.
%%% @end
-module(ewpcap_pcap_file).

-export([header/3, header/4, record/3, record/4, linktype/1]).
-export([open_write/2, write/3, flush/1, close_write/1]).
-export([open_read/1, open_read/2, read/1, read/2, close_read/1, read_file/1, info/1]).
-export([format_error/1, write_io/3]).

-export_type([writer/0, reader/0, packet/0, reason/0]).

-define(FLUSH_BYTES, 65536).
-define(MAX_RECORD, 16#4000000).
-define(CHUNK, 65536).

-record(writer, {
    io :: file:io_device() | standard_io, % the file, or standard output
    name :: string(),                      % for the messages
    unbuffered :: boolean(),               % flush after each packet
    snaplen :: pos_integer(),              % of the global header
    precision = micro :: micro | nano,     % of the times and the magic
    header = false :: boolean(),           % written yet?
    buf = [] :: iolist(),                  % waiting to be written
    size = 0 :: non_neg_integer()          % bytes in buf
}).

-record(reader, {
    io :: file:io_device() | standard_io,
    endian :: big | little,
    unit :: micro | nano,                  % of the file
    out = micro :: micro | nano,           % of the times read/1 returns
    ng :: ewpcap_pcapng_read:reader() | undefined, % a pcapng file
    snaplen :: non_neg_integer(),
    linktype :: non_neg_integer(),
    name :: string(),
    seekable = false :: boolean(),         % read/2 reads chunks, gives back the rest
    error = none :: none | {error, reason()} % met by read/2 after some records
}).

-opaque writer() :: #writer{}.
%% A savefile being written.
-opaque reader() :: #reader{}.
%% A savefile being read.

-type packet() :: {Time :: non_neg_integer(), Length :: non_neg_integer(), Packet :: binary()}.
%% A record: microseconds since the epoch, the length on the wire, the
%% captured bytes.

-type reason() ::
    {string(), file:posix() | closed | not_pcap | pcapng | no_interface | truncated_header
              | truncated_record | truncated_record_header | {bogus_length, non_neg_integer()}
              | {read, file:posix()}}.
%% The file name and what went wrong; `closed': standard output or the
%% pipe was closed.

%%% ===================================================================
%%% Encoding
%%% ===================================================================

%% @equiv header(LinkType, Snaplen, Endian, micro)
-spec header(0..16#FFFFFFFF, pos_integer(), big | little | native) -> <<_:192>>.
header(LinkType, Snaplen, Endian) ->
    header(LinkType, Snaplen, Endian, micro).

%% @doc The global header: magic 0xa1b2c3d4 (microseconds) or 0xa1b23c4d
%% (nanoseconds), version 2.4, zone 0, sigfigs 0, snaplen, link type, in
%% the given byte order.
-spec header(0..16#FFFFFFFF, pos_integer(), big | little | native, micro | nano) -> binary().
header(LinkType, Snaplen, native, Precision) ->
    <<(magic(Precision)):32/native, 2:16/native, 4:16/native, 0:32/native, 0:32/native,
      Snaplen:32/native, LinkType:32/native>>;
header(LinkType, Snaplen, big, Precision) ->
    <<(magic(Precision)):32/big, 2:16/big, 4:16/big, 0:32, 0:32, Snaplen:32/big, LinkType:32/big>>;
header(LinkType, Snaplen, little, Precision) ->
    <<(magic(Precision)):32/little, 2:16/little, 4:16/little, 0:32, 0:32,
      Snaplen:32/little, LinkType:32/little>>.

magic(micro) -> 16#a1b2c3d4;
magic(nano) -> 16#a1b23c4d.

%% @equiv record(Time, Len, Packet, micro)
-spec record(non_neg_integer(), non_neg_integer(), binary()) -> [binary(), ...].
record(Time, Len, Packet) ->
    record(Time, Len, Packet, micro).

%% @doc One record, host byte order: `Time' in microseconds (`micro') or
%% nanoseconds (`nano') since the epoch, `Len' the length on the wire.
-spec record(non_neg_integer(), non_neg_integer(), binary(), micro | nano) -> iolist().
record(Time, Len, Packet, Precision) ->
    Unit = case Precision of
               micro -> 1000000;
               nano -> 1000000000
           end,
    [<<(Time div Unit):32/native, (Time rem Unit):32/native,
       (byte_size(Packet)):32/native, Len:32/native>>, Packet].

%% @doc The savefile link type of a pcap DLT: DLT_RAW is 12 (14 on
%% OpenBSD) in the API and 101 in files; the other values we meet are the
%% same in both.
-spec linktype(non_neg_integer()) -> non_neg_integer().
linktype(12) -> 101;
linktype(14) -> 101;
linktype(Dlt) -> Dlt.

%%% ===================================================================
%%% Writing
%%% ===================================================================

%% @doc Opens `Name' (`"-"': standard output) for writing. Options:
%% `unbuffered' (default `false': written per 64 KiB), `snaplen' (for the
%% global header, default 262144), `dlt' (the link type of the packets:
%% the global header is written at once; without it, before the first
%% packet), `precision' (`micro', the default, or `nano': the magic and
%% the unit of the packets' times).
-spec open_write(string(), #{unbuffered => boolean(), snaplen => pos_integer(),
                             dlt => non_neg_integer() | undefined,
                             precision => micro | nano}) ->
    {ok, writer()} | {error, reason()}.
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
            W = #writer{io = Fd, name = Name,
                        unbuffered = maps:get(unbuffered, Opts, false),
                        snaplen = maps:get(snaplen, Opts, 262144),
                        precision = maps:get(precision, Opts, micro)},
            case maps:get(dlt, Opts, undefined) of
                undefined -> {ok, W};
                Dlt ->
                    case flush_writer(put_header(W, Dlt)) of
                        {ok, _} = Ok -> Ok;
                        {error, Reason, _} -> {error, Reason}
                    end
            end;
        {error, Posix} ->
            {error, {Name, Posix}}
    end.

%% @doc Adds packets of link type `Dlt' (the global header first, when
%% not written yet); writes them out when the buffer passes 64 KiB or the
%% writer is unbuffered.
-spec write(writer(), non_neg_integer(), [packet()]) ->
    {ok, writer()} | {error, reason(), writer()}.
write(W, Dlt, Packets) ->
    W1 = case W#writer.header of
             false -> put_header(W, Dlt);
             true -> W
         end,
    P = W1#writer.precision,
    W2 = lists:foldl(fun({Time, Len, Packet}, Acc) ->
                             put_bytes(Acc, record(Time, Len, Packet, P))
                     end, W1, Packets),
    case W2#writer.unbuffered orelse W2#writer.size >= ?FLUSH_BYTES of
        true -> flush_writer(W2);
        false -> {ok, W2}
    end.

%% @doc Writes out what is buffered.
-spec flush(writer()) -> {ok, writer()} | {error, reason(), writer()}.
flush(W) ->
    flush_writer(W).

%% @doc Writes out what is buffered and closes the file (not standard
%% output).
-spec close_write(writer()) -> ok | {error, reason()}.
close_write(W) ->
    Result = flush_writer(W),
    case W#writer.io of
        standard_io -> ok;
        Fd -> _ = file:close(Fd), ok
    end,
    case Result of
        {ok, _} -> ok;
        {error, Reason, _} -> {error, Reason}
    end.

%%% ===================================================================
%%% Reading
%%% ===================================================================

%% @equiv open_read(Name, #{})
-spec open_read(string()) -> {ok, reader()} | {error, reason()}.
open_read(Name) ->
    open_read(Name, #{}).

%% @doc Opens a savefile (`"-"': standard input) and reads its header.
%% Option: `precision', the unit of the times read/1 returns (`micro',
%% the default, or `nano').
-spec open_read(string(), #{precision => micro | nano}) -> {ok, reader()} | {error, reason()}.
open_read("-", Opts) ->
    ok = io:setopts(standard_io, [binary, {encoding, latin1}]),
    reader(standard_io, "-", maps:get(precision, Opts, micro));
open_read(Name, Opts) ->
    case file:open(Name, [read, raw, binary, {read_ahead, 262144}]) of
        {ok, Fd} ->
            case reader(Fd, Name, maps:get(precision, Opts, micro)) of
                {ok, #reader{ng = undefined} = R} ->
                    {ok, R#reader{seekable = element(1, file:position(Fd, cur)) =:= ok}};
                {ok, _} = Ok -> Ok;
                {error, _} = Error -> _ = file:close(Fd), Error
            end;
        {error, Posix} ->
            {error, {Name, Posix}}
    end.

%% @doc The savefile's name, link type and snaplen (of a pcapng file:
%% those of its first interface).
-spec info(reader()) -> #{name := string(), linktype := non_neg_integer(),
                          snaplen := non_neg_integer()}.
info(#reader{name = Name, linktype = L, snaplen = S}) ->
    #{name => Name, linktype => L, snaplen => S}.

%% @doc The next record and the reader to go on with; `eof' at the end.
-spec read(reader()) -> {ok, packet(), reader()} | eof | {error, reason()}.
read(#reader{error = {error, _} = Error}) ->
    Error;
read(#reader{ng = undefined, io = Io, endian = E, unit = U, out = Out, name = Name} = R) ->
    case read_n(Io, 16, Name) of
        {ok, <<>>} ->
            eof;
        {ok, <<Hdr:16/binary>>} ->
            {Sec, Frac, Incl, Orig} =
                case E of
                    big -> <<A:32/big, B:32/big, C:32/big, D:32/big>> = Hdr, {A, B, C, D};
                    little -> <<A:32/little, B:32/little, C:32/little, D:32/little>> = Hdr, {A, B, C, D}
                end,
            case Incl =< ?MAX_RECORD andalso read_n(Io, Incl, Name) of
                false -> {error, {Name, {bogus_length, Incl}}};
                {ok, Packet} when byte_size(Packet) =:= Incl ->
                    {ok, {time(U, Out, Sec, Frac), Orig, Packet}, R};
                {ok, _} -> {error, {Name, truncated_record}};
                {error, _} = Error -> Error
            end;
        {ok, _} ->
            {error, {Name, truncated_record_header}};
        {error, _} = Error ->
            Error
    end;
read(#reader{ng = Ng, out = Out} = R) ->
    case ewpcap_pcapng_read:read(Ng) of
        {ok, {_IfId, Ns, Orig, Packet}, Ng1} ->
            Time = case Out of
                       micro -> Ns div 1000;
                       nano -> Ns
                   end,
            {ok, {Time, Orig, Packet}, R#reader{ng = Ng1}};
        Other ->
            Other
    end.

%% @doc Up to `N' records and the reader to go on with, the same as N
%% calls of read/1 (`eof': the end came first). From a pcap file (not a
%% pipe, not pcapng) the records are cut from 64 KiB reads and what is
%% left of the last one is given back; a record that does not fit, the
%% end of the file and errors are left to read/1. An error after some
%% records: those records (`ok', fewer than N), then the error at the
%% next call.
-spec read(reader(), pos_integer()) ->
    {ok, [packet()], reader()} | {eof, [packet()]} | {error, reason()}.
read(#reader{error = {error, _} = Error}, _N) ->
    Error;
read(R, N) ->
    read_chunk(R, N, []).

read_chunk(R, 0, Acc) ->
    {ok, lists:reverse(Acc), R};
read_chunk(#reader{seekable = false} = R, N, Acc) ->
    read_one(R, N, Acc);
read_chunk(#reader{io = Io, name = Name} = R, N, Acc) ->
    case file:read(Io, ?CHUNK) of
        {ok, Data} ->
            {Acc1, N1, Rest} = records(R, Data, N, Acc),
            case byte_size(Rest) of
                0 -> ok;
                Back -> {ok, _} = file:position(Io, {cur, -Back}), ok
            end,
            case N1 of
                N -> read_one(R, N, Acc);   % not one whole record
                _ -> read_chunk(R, N1, Acc1)
            end;
        eof ->
            {eof, lists:reverse(Acc)};
        {error, Posix} ->
            {error, {Name, {read, Posix}}}
    end.

read_one(R, N, Acc) ->
    case read(R) of
        {ok, Rec, R1} ->
            read_chunk(R1, N - 1, [Rec | Acc]);
        eof ->
            {eof, lists:reverse(Acc)};
        {error, _} = Error when Acc =/= [] ->
            % the records before it first; the next call gives the error
            {ok, lists:reverse(Acc), R#reader{error = Error}};
        {error, _} = Error ->
            Error
    end.

%% The whole records at the start of Data (at most N).
records(_R, Data, 0, Acc) ->
    {Acc, 0, Data};
records(#reader{endian = little, unit = U, out = Out} = R,
        <<Sec:32/little, Frac:32/little, Incl:32/little, Orig:32/little, Rest/binary>> = Data,
        N, Acc) when Incl =< ?MAX_RECORD ->
    case Rest of
        <<Packet:Incl/binary, More/binary>> ->
            records(R, More, N - 1, [{time(U, Out, Sec, Frac), Orig, Packet} | Acc]);
        _ ->
            {Acc, N, Data}
    end;
records(#reader{endian = big, unit = U, out = Out} = R,
        <<Sec:32/big, Frac:32/big, Incl:32/big, Orig:32/big, Rest/binary>> = Data,
        N, Acc) when Incl =< ?MAX_RECORD ->
    case Rest of
        <<Packet:Incl/binary, More/binary>> ->
            records(R, More, N - 1, [{time(U, Out, Sec, Frac), Orig, Packet} | Acc]);
        _ ->
            {Acc, N, Data}
    end;
records(_R, Data, N, Acc) ->
    {Acc, N, Data}.

%% A record's time in the unit asked for (Out), from the file's (U).
time(micro, micro, Sec, Frac) -> Sec * 1000000 + Frac;
time(nano, micro, Sec, Frac) -> Sec * 1000000 + Frac div 1000;
time(micro, nano, Sec, Frac) -> Sec * 1000000000 + Frac * 1000;
time(nano, nano, Sec, Frac) -> Sec * 1000000000 + Frac.

%% @doc Closes the savefile (not standard input).
-spec close_read(reader()) -> ok.
close_read(#reader{io = standard_io}) ->
    ok;
close_read(#reader{io = Fd}) ->
    _ = file:close(Fd),
    ok.

%% @doc Reads a whole savefile: `{ok, LinkType, Snaplen, Packets}' or
%% `{error, Text}'.
-spec read_file(file:filename()) ->
    {ok, non_neg_integer(), non_neg_integer(), [packet()]} | {error, string()}.
read_file(Name) ->
    case open_read(Name) of
        {ok, R} ->
            Result = read_all(R, []),
            close_read(R),
            case Result of
                {ok, Recs} -> {ok, R#reader.linktype, R#reader.snaplen, Recs};
                {error, Reason} -> {error, format_error(Reason)}
            end;
        {error, Reason} ->
            {error, format_error(Reason)}
    end.

%% @doc The text of an error, as `ewpcap_dump' prints it.
-spec format_error(reason()) -> string().
format_error({Name, Why}) ->
    lists:flatten(
      case Why of
          not_pcap -> io_lib:format("~ts: not a pcap savefile", [Name]);
          pcapng -> io_lib:format("~ts: pcapng files are not supported", [Name]);
          no_interface -> io_lib:format("~ts: pcapng file without an interface description", [Name]);
          truncated_header -> io_lib:format("~ts: truncated savefile header", [Name]);
          truncated_record -> io_lib:format("~ts: truncated record", [Name]);
          truncated_record_header -> io_lib:format("~ts: truncated record header", [Name]);
          {bogus_length, N} -> io_lib:format("~ts: bogus record length ~b", [Name, N]);
          closed -> io_lib:format("~ts: closed", [Name]);
          {read, Posix} -> io_lib:format("read: ~ts", [file:format_error(Posix)]);
          Posix -> io_lib:format("~ts: ~ts", [Name, file:format_error(Posix)])
      end).

%% @doc Writes `Bytes' to a savefile's `Io' (named `Name' in errors): a
%% reader that went away (`| head') is `closed', as for every writer here
%% (ewpcap_pcapng's too).
-spec write_io(file:io_device(), string(), iodata()) -> ok | {error, reason()}.
write_io(Io, Name, Bytes) ->
    case catch file:write(Io, Bytes) of
        ok -> ok;
        {error, Closed} when Closed =:= epipe; Closed =:= terminated -> {error, {Name, closed}};
        {error, Posix} -> {error, {Name, Posix}};
        _ -> {error, {Name, closed}}
    end.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

put_header(W, Dlt) ->
    put_bytes(W#writer{header = true},
              header(linktype(Dlt), W#writer.snaplen, native, W#writer.precision)).

put_bytes(#writer{buf = Buf, size = Size} = W, Bytes) ->
    W#writer{buf = [Buf, Bytes], size = Size + iolist_size(Bytes)}.

flush_writer(#writer{size = 0} = W) ->
    {ok, W};
flush_writer(#writer{io = Io, buf = Buf, name = Name} = W) ->
    Empty = W#writer{buf = [], size = 0},
    case write_io(Io, Name, Buf) of
        ok -> {ok, Empty};
        {error, Reason} -> {error, Reason, Empty}
    end.

reader(Io, Name, Out) ->
    case read_n(Io, 24, Name) of
        {ok, <<Magic:4/binary, Rest:20/binary>>} ->
            Kind = case Magic of
                       <<16#a1b2c3d4:32/big>> -> {big, micro};
                       <<16#a1b2c3d4:32/little>> -> {little, micro};
                       <<16#a1b23c4d:32/big>> -> {big, nano};
                       <<16#a1b23c4d:32/little>> -> {little, nano};
                       <<16#0a0d0d0a:32>> -> {pcapng, Magic};
                       _ -> not_pcap
                   end,
            case Kind of
                {pcapng, _} ->
                    case ewpcap_pcapng_read:reader(Io, Name, <<Magic/binary, Rest/binary>>) of
                        {ok, Ng} ->
                            #{linktype := L, snaplen := S} = ewpcap_pcapng_read:info(Ng),
                            {ok, #reader{io = Io, endian = little, unit = nano, out = Out,
                                         snaplen = S, linktype = L, name = Name, ng = Ng}};
                        {error, _} = Error ->
                            Error
                    end;
                {Endian, Unit} ->
                    {Snaplen, LinkType} =
                        case Endian of
                            big -> <<_:32, _:32, _:32, S:32/big, L:32/big>> = Rest, {S, L};
                            little -> <<_:32, _:32, _:32, S:32/little, L:32/little>> = Rest, {S, L}
                        end,
                    {ok, #reader{io = Io, endian = Endian, unit = Unit, out = Out,
                                 snaplen = Snaplen, linktype = LinkType band 16#FFFF,
                                 name = Name}};
                Why ->
                    {error, {Name, Why}}
            end;
        {ok, _} ->
            {error, {Name, truncated_header}};
        {error, _} = Error ->
            Error
    end.

read_n(Io, N, Name) ->
    case file:read(Io, N) of
        {ok, Data} -> {ok, iolist_to_binary(Data)};
        eof -> {ok, <<>>};
        {error, Posix} -> {error, {Name, {read, Posix}}}
    end.

read_all(R, Acc) ->
    case read(R) of
        eof -> {ok, lists:reverse(Acc)};
        {ok, Rec, R1} -> read_all(R1, [Rec | Acc]);
        {error, _} = Error -> Error
    end.
