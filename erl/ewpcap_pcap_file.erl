%%% @doc pcap savefiles in Erlang: the classic libpcap format (a 24-byte
%%% global header, then a 16-byte record header and the bytes of each
%%% packet), as tcpdump, tshark and Wireshark read and write it.
%%%
%%% <ul>
%%% <li>Encoding: header/3 and record/3, pure.</li>
%%% <li>Writing: open_write/2, write/3 and close_write/1, a buffered
%%%     writer (64 KiB, or every packet with `unbuffered') that writes the
%%%     global header at once (a capture that ends before its first packet
%%%     still leaves a valid, empty savefile), in host byte order with
%%%     microsecond timestamps. The packets are those of ewpcap's messages
%%%     with `{time_unit, microsecond}': `{Time, Length, Packet}'.</li>
%%% <li>Reading: open_read/1, read/1 (a record), read/2 (many: a chunk
%%%     at a time from a file), close_read/1 and read_file/1: both
%%%     byte orders, micro- and nanosecond files (magic `0xa1b2c3d4' and
%%%     `0xa1b23c4d'; times come back in microseconds). pcapng is not
%%%     read.</li>
%%% </ul>
%%% `"-"' as a file name is standard output or input. Errors are
%%% `{error, Reason}'; format_error/1 gives the text.
%%%
%%% Live captures can also be recorded by the daemon itself on its host,
%%% see the `{dump, Path}' option of ewpcap:open/2.
%%% @end
-module(ewpcap_pcap_file).

-export([header/3, record/3, linktype/1]).
-export([open_write/2, write/3, flush/1, close_write/1]).
-export([open_read/1, read/1, read/2, close_read/1, read_file/1, info/1]).
-export([format_error/1]).

-export_type([writer/0, reader/0, packet/0, reason/0]).

-define(FLUSH_BYTES, 65536).
-define(MAX_RECORD, 16#4000000).
-define(CHUNK, 65536).

-record(writer, {
    io :: file:io_device() | standard_io, % the file, or standard output
    name :: string(),                      % for the messages
    unbuffered :: boolean(),               % flush after each packet
    snaplen :: pos_integer(),              % of the global header
    header = false :: boolean(),           % written yet?
    buf = [] :: iolist(),                  % waiting to be written
    size = 0 :: non_neg_integer()          % bytes in buf
}).

-record(reader, {
    io :: file:io_device() | standard_io,
    endian :: big | little,
    unit :: micro | nano,
    snaplen :: non_neg_integer(),
    linktype :: non_neg_integer(),
    name :: string(),
    seekable = false :: boolean()          % read/2 reads chunks, gives back the rest
}).

-opaque writer() :: #writer{}.
%% A savefile being written.
-opaque reader() :: #reader{}.
%% A savefile being read.

-type packet() :: {Time :: non_neg_integer(), Length :: non_neg_integer(), Packet :: binary()}.
%% A record: microseconds since the epoch, the length on the wire, the
%% captured bytes.

-type reason() ::
    {string(), file:posix() | closed | not_pcap | pcapng | truncated_header
              | truncated_record | truncated_record_header | {bogus_length, non_neg_integer()}
              | {read, file:posix()}}.
%% The file name and what went wrong; `closed': standard output or the
%% pipe was closed.

%%% ===================================================================
%%% Encoding
%%% ===================================================================

%% @doc The global header: magic 0xa1b2c3d4 (microseconds), version 2.4,
%% zone 0, sigfigs 0, snaplen, link type, in the given byte order.
-spec header(0..16#FFFFFFFF, pos_integer(), big | little | native) -> binary().
header(LinkType, Snaplen, native) ->
    <<16#a1b2c3d4:32/native, 2:16/native, 4:16/native, 0:32/native, 0:32/native,
      Snaplen:32/native, LinkType:32/native>>;
header(LinkType, Snaplen, big) ->
    <<16#a1b2c3d4:32/big, 2:16/big, 4:16/big, 0:32, 0:32, Snaplen:32/big, LinkType:32/big>>;
header(LinkType, Snaplen, little) ->
    <<16#a1b2c3d4:32/little, 2:16/little, 4:16/little, 0:32, 0:32,
      Snaplen:32/little, LinkType:32/little>>.

%% @doc One record, host byte order: `Time' in microseconds since the
%% epoch, `Len' the length on the wire.
-spec record(non_neg_integer(), non_neg_integer(), binary()) -> iolist().
record(Time, Len, Packet) ->
    [<<(Time div 1000000):32/native, (Time rem 1000000):32/native,
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
%% packet).
-spec open_write(string(), #{unbuffered => boolean(), snaplen => pos_integer(),
                             dlt => non_neg_integer() | undefined}) ->
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
                        snaplen = maps:get(snaplen, Opts, 262144)},
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
    W2 = lists:foldl(fun({Time, Len, Packet}, Acc) ->
                             put_bytes(Acc, record(Time, Len, Packet))
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

%% @doc Opens a savefile (`"-"': standard input) and reads its header.
-spec open_read(string()) -> {ok, reader()} | {error, reason()}.
open_read("-") ->
    ok = io:setopts(standard_io, [binary, {encoding, latin1}]),
    reader(standard_io, "-");
open_read(Name) ->
    case file:open(Name, [read, raw, binary, {read_ahead, 262144}]) of
        {ok, Fd} ->
            case reader(Fd, Name) of
                {ok, R} -> {ok, R#reader{seekable = element(1, file:position(Fd, cur)) =:= ok}};
                {error, _} = Error -> _ = file:close(Fd), Error
            end;
        {error, Posix} ->
            {error, {Name, Posix}}
    end.

%% @doc The savefile's name, link type and snaplen.
-spec info(reader()) -> #{name := string(), linktype := non_neg_integer(),
                          snaplen := non_neg_integer()}.
info(#reader{name = Name, linktype = L, snaplen = S}) ->
    #{name => Name, linktype => L, snaplen => S}.

%% @doc The next record, `eof' at the end.
-spec read(reader()) -> {ok, packet()} | eof | {error, reason()}.
read(#reader{io = Io, endian = E, unit = U, name = Name}) ->
    case read_n(Io, 16, Name) of
        {ok, <<>>} ->
            eof;
        {ok, <<Hdr:16/binary>>} ->
            {Sec, Frac, Incl, Orig} =
                case E of
                    big -> <<A:32/big, B:32/big, C:32/big, D:32/big>> = Hdr, {A, B, C, D};
                    little -> <<A:32/little, B:32/little, C:32/little, D:32/little>> = Hdr, {A, B, C, D}
                end,
            Micro = case U of
                        micro -> Frac;
                        nano -> Frac div 1000
                    end,
            case Incl =< ?MAX_RECORD andalso read_n(Io, Incl, Name) of
                false -> {error, {Name, {bogus_length, Incl}}};
                {ok, Packet} when byte_size(Packet) =:= Incl -> {ok, {Sec * 1000000 + Micro, Orig, Packet}};
                {ok, _} -> {error, {Name, truncated_record}};
                {error, _} = Error -> Error
            end;
        {ok, _} ->
            {error, {Name, truncated_record_header}};
        {error, _} = Error ->
            Error
    end.

%% @doc Up to `N' records, the same as N calls of read/1 (`eof': the
%% end came first). From a file (not a pipe) the records are cut from
%% 64 KiB reads and what is left of the last one is given back; a record
%% that does not fit, the end of the file and errors are left to read/1.
%% An error after some records: from a file, those records (`ok', fewer
%% than N), then the error at the next call; from a pipe, the error.
-spec read(reader(), pos_integer()) -> {ok | eof, [packet()]} | {error, reason()}.
read(R, N) ->
    read_chunk(R, N, []).

read_chunk(_R, 0, Acc) ->
    {ok, lists:reverse(Acc)};
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

read_one(#reader{io = Io, seekable = Seekable} = R, N, Acc) ->
    Pos = case Seekable andalso Acc =/= [] of
              true -> file:position(Io, cur);
              false -> none
          end,
    case read(R) of
        {ok, Rec} ->
            read_chunk(R, N - 1, [Rec | Acc]);
        eof ->
            {eof, lists:reverse(Acc)};
        {error, _} when element(1, Pos) =:= ok ->
            % the records before it first; the next call meets it again
            {ok, _} = file:position(Io, element(2, Pos)),
            {ok, lists:reverse(Acc)};
        {error, _} = Error ->
            Error
    end.

%% The whole records at the start of Data (at most N).
records(_R, Data, 0, Acc) ->
    {Acc, 0, Data};
records(#reader{endian = little, unit = U} = R,
        <<Sec:32/little, Frac:32/little, Incl:32/little, Orig:32/little, Rest/binary>> = Data,
        N, Acc) when Incl =< ?MAX_RECORD ->
    case Rest of
        <<Packet:Incl/binary, More/binary>> ->
            records(R, More, N - 1, [{Sec * 1000000 + micro(U, Frac), Orig, Packet} | Acc]);
        _ ->
            {Acc, N, Data}
    end;
records(#reader{endian = big, unit = U} = R,
        <<Sec:32/big, Frac:32/big, Incl:32/big, Orig:32/big, Rest/binary>> = Data,
        N, Acc) when Incl =< ?MAX_RECORD ->
    case Rest of
        <<Packet:Incl/binary, More/binary>> ->
            records(R, More, N - 1, [{Sec * 1000000 + micro(U, Frac), Orig, Packet} | Acc]);
        _ ->
            {Acc, N, Data}
    end;
records(_R, Data, N, Acc) ->
    {Acc, N, Data}.

micro(micro, Frac) -> Frac;
micro(nano, Frac) -> Frac div 1000.

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
          truncated_header -> io_lib:format("~ts: truncated savefile header", [Name]);
          truncated_record -> io_lib:format("~ts: truncated record", [Name]);
          truncated_record_header -> io_lib:format("~ts: truncated record header", [Name]);
          {bogus_length, N} -> io_lib:format("~ts: bogus record length ~b", [Name, N]);
          closed -> io_lib:format("~ts: closed", [Name]);
          {read, Posix} -> io_lib:format("read: ~ts", [file:format_error(Posix)]);
          Posix -> io_lib:format("~ts: ~ts", [Name, file:format_error(Posix)])
      end).

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

put_header(W, Dlt) ->
    put_bytes(W#writer{header = true}, header(linktype(Dlt), W#writer.snaplen, native)).

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

reader(Io, Name) ->
    case read_n(Io, 24, Name) of
        {ok, <<Magic:4/binary, Rest:20/binary>>} ->
            Kind = case Magic of
                       <<16#a1b2c3d4:32/big>> -> {big, micro};
                       <<16#a1b2c3d4:32/little>> -> {little, micro};
                       <<16#a1b23c4d:32/big>> -> {big, nano};
                       <<16#a1b23c4d:32/little>> -> {little, nano};
                       <<16#0a0d0d0a:32>> -> pcapng;
                       _ -> not_pcap
                   end,
            case Kind of
                {Endian, Unit} ->
                    {Snaplen, LinkType} =
                        case Endian of
                            big -> <<_:32, _:32, _:32, S:32/big, L:32/big>> = Rest, {S, L};
                            little -> <<_:32, _:32, _:32, S:32/little, L:32/little>> = Rest, {S, L}
                        end,
                    {ok, #reader{io = Io, endian = Endian, unit = Unit, snaplen = Snaplen,
                                 linktype = LinkType band 16#FFFF, name = Name}};
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
        {ok, Rec} -> read_all(R, [Rec | Acc]);
        {error, _} = Error -> Error
    end.
