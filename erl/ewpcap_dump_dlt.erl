%%% @doc Link-type names as libpcap gives them, for ewpcap_dump's
%%% `listening on' and `reading from file' lines ("link-type EN10MB
%%% (Ethernet)", or the number where libpcap has no name, as tcpdump
%%% prints them).
%%%
%%% The table is not typed here: `make' builds bin-src/dlt_table.c against
%%% libpcap and writes erl/ewpcap_dump_dlt.hrl from
%%% `pcap_datalink_val_to_name/_description' and from the DLT libpcap
%%% gives each savefile link type (LINKTYPE_RAW 101 is DLT_RAW 12, ...).
%%% @end
-module(ewpcap_dump_dlt).

-export([desc/1, file_desc/1, name/1, file_dlt/1]).

%% name/1: {Name, Description} of a DLT libpcap names, or undefined.
-spec name(non_neg_integer()) -> {string(), string()} | undefined.
%% file_dlt/1: the DLT of a savefile link type.
-spec file_dlt(non_neg_integer()) -> non_neg_integer().
-include("ewpcap_dump_dlt.hrl").

%% @doc `"NAME (DESCRIPTION)"' of a DLT (a live handle's), or its number.
-spec desc(non_neg_integer() | undefined) -> string().
desc(undefined) ->
    "unknown";
desc(Dlt) ->
    case name(Dlt) of
        {Name, Desc} -> Name ++ " (" ++ Desc ++ ")";
        undefined -> integer_to_list(Dlt)
    end.

%% @doc desc/1 of the DLT libpcap reads a savefile with this link type as.
-spec file_desc(non_neg_integer() | undefined) -> string().
file_desc(undefined) ->
    "unknown";
file_desc(LinkType) ->
    desc(file_dlt(LinkType)).
