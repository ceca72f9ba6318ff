%%% @doc Reading pcapng files (draft-ietf-opsawg-pcapng), for
%%% ewpcap_pcap_file, which hands them over here: Section Header,
%%% Interface Description, Enhanced, Simple and obsolete Packet Blocks,
%%% either byte order (a new section may change it), any `if_tsresol'
%%% (a power of 10 or of 2) and `if_tsoffset'; other blocks are skipped.
%%% Times come back in nanoseconds since the epoch. Writing is
%%% ewpcap_pcapng's.
%%% @end
-module(ewpcap_pcapng_read).

-export([reader/3, read/1, info/1]).

-export_type([reader/0]).

-define(BYTE_ORDER_MAGIC, 16#1A2B3C4D).
-define(SHB, 16#0A0D0D0A).
-define(IDB, 1).
-define(PB, 2).   % obsolete Packet Block
-define(SPB, 3).
-define(EPB, 6).

-define(OPT_ENDOFOPT, 0).
-define(IF_TSRESOL, 9).
-define(IF_TSOFFSET, 14).

-define(MAX_BLOCK, 16#4000000).

-record(ng, {
    io :: file:io_device() | standard_io,
    name :: string(),
    endian :: big | little,
    ifs = #{} :: #{non_neg_integer() => {non_neg_integer(), non_neg_integer(),
                                         {pos_integer(), pos_integer()}, integer()}},
    pending = [] :: [{non_neg_integer(), binary()}] % blocks read ahead by reader/3
}).

-opaque reader() :: #ng{}.
%% A pcapng file being read.

%%% ===================================================================
%%% API
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

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

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
