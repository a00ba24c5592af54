#pragma once
// The project's one CAF vocabulary: every atom, the typed interface of every actor kind, and the type-ID
// block of every custom message type. It lives in actors/ rather than protocol/ so that protocol/ stays free
// of CAF (DESIGN.md: protocol is sans-I/O and actor-free).
//
// Each atom names one meaning. A handle's type lists every message its actor takes and what it answers, so a
// wrong message or a wrong reply type is a compile error, not an INTERNAL answer ten seconds later.
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/replies_to.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include "actors/messages.hpp"
#include "cluster/bus.hpp"
#include "actors/replies.hpp"
#include "actors/tunnel_host_config.hpp"
#include "tunnel/io/relay_control.hpp"

// -- atoms (CAF 0.17: at most 10 characters of text) ------------------------------------------------------

CAF_BEGIN_TYPE_ID_BLOCK(switchboard, caf::first_custom_type_id)

// The gateway: clients, sessions, the supervisor's indexes.
CAF_ADD_ATOM(switchboard, sb, client_started_atom, "clientup")     // a client actor is running: index it
CAF_ADD_ATOM(switchboard, sb, client_gone_atom, "clientgone")      // a client disconnected: forget it
CAF_ADD_ATOM(switchboard, sb, connection_closed_atom, "connclosed")  // the client's socket closed (code)
CAF_ADD_ATOM(switchboard, sb, auth_deadline_atom, "authdead")      // authTimeoutMs passed
CAF_ADD_ATOM(switchboard, sb, kick_atom, "kick")                   // close a client (admin kick)
CAF_ADD_ATOM(switchboard, sb, drain_atom, "drain")                 // close every client with 1001
CAF_ADD_ATOM(switchboard, sb, presence_atom, "presence")           // a client's presence entry changed
CAF_ADD_ATOM(switchboard, sb, presence_list_atom, "presencels")    // a page of the node's presence view
CAF_ADD_ATOM(switchboard, sb, presence_update_atom, "presenceup")  // tell a session's members an update
CAF_ADD_ATOM(switchboard, sb, create_atom, "create")               // create a session and join it
CAF_ADD_ATOM(switchboard, sb, join_atom, "join")
CAF_ADD_ATOM(switchboard, sb, leave_atom, "leave")
CAF_ADD_ATOM(switchboard, sb, patch_atom, "patch")                 // merge-patch a session's metadata
CAF_ADD_ATOM(switchboard, sb, broadcast_atom, "broadcast")         // a member's message to the others
CAF_ADD_ATOM(switchboard, sb, client_page_atom, "clientpage")      // a page of the client index
CAF_ADD_ATOM(switchboard, sb, session_page_atom, "sesspage")       // a page of the session index
CAF_ADD_ATOM(switchboard, sb, find_client_atom, "findclient")    // one client by id (0 or 1 entries)
CAF_ADD_ATOM(switchboard, sb, find_session_atom, "findsess")      // one session by id (0 or 1 entries)
CAF_ADD_ATOM(switchboard, sb, registry_atom, "registry")           // the current agent registry handle
CAF_ADD_ATOM(switchboard, sb, node_stats_atom, "nodestats")        // the supervisor's counts for `stats`
// The agent registry.
CAF_ADD_ATOM(switchboard, sb, register_atom, "register")
CAF_ADD_ATOM(switchboard, sb, unregister_atom, "unregister")
CAF_ADD_ATOM(switchboard, sb, agent_status_atom, "agentstat")      // an agent's status changed
CAF_ADD_ATOM(switchboard, sb, route_request_atom, "routereq")
CAF_ADD_ATOM(switchboard, sb, route_response_atom, "routeresp")
CAF_ADD_ATOM(switchboard, sb, route_timeout_atom, "routetime")     // a routed request's deadline passed
CAF_ADD_ATOM(switchboard, sb, sweep_atom, "sweep")                 // drop expired offline records
CAF_ADD_ATOM(switchboard, sb, agent_page_atom, "agentpage")        // a page of the registry
// The cluster.
CAF_ADD_ATOM(switchboard, sb, kv_read_atom, "kvread")            // a KV read an actor asked for finished
CAF_ADD_ATOM(switchboard, sb, kv_written_atom, "kvwritten")      // a KV write an actor asked for finished
CAF_ADD_ATOM(switchboard, sb, record_changed_atom, "recchanged")  // a watched session record changed
CAF_ADD_ATOM(switchboard, sb, presence_changed_atom, "presencech")  // a watched presence entry changed
CAF_ADD_ATOM(switchboard, sb, agent_changed_atom, "agentchg")      // a watched agent record changed
CAF_ADD_ATOM(switchboard, sb, route_in_atom, "routein")            // a route_request from another node
CAF_ADD_ATOM(switchboard, sb, route_reply_atom, "routereply")      // another node answered a route
CAF_ADD_ATOM(switchboard, sb, fanout_atom, "fanout")             // a frame for a session's members here
CAF_ADD_ATOM(switchboard, sb, node_lost_atom, "nodelost")        // a node stopped sending heartbeats
CAF_ADD_ATOM(switchboard, sb, heartbeat_atom, "heartbeat")       // another node's heartbeat
CAF_ADD_ATOM(switchboard, sb, heartbeat_tick_atom, "hbtick")     // send ours, look for silent nodes
CAF_ADD_ATOM(switchboard, sb, bus_state_atom, "busstate")        // the bus connected or lost its server
CAF_ADD_ATOM(switchboard, sb, cluster_view_atom, "clustview")  // the members for `admin cluster`
CAF_ADD_ATOM(switchboard, sb, resync_atom, "resync")            // the bus is back: put this node's state in KV again
CAF_ADD_ATOM(switchboard, sb, resync_failed_atom, "resyncfail")  // a write of a resync failed: another, later
CAF_ADD_ATOM(switchboard, sb, records_synced_atom, "recsynced")  // the sessions watch caught up
CAF_ADD_ATOM(switchboard, sb, presence_synced_atom, "prsynced")  // the presence watch caught up
CAF_ADD_ATOM(switchboard, sb, agents_synced_atom, "agsynced")    // the agents watch caught up
// Every actor.
CAF_ADD_ATOM(switchboard, sb, info_atom, "info")                   // the full record (client, session)
CAF_ADD_ATOM(switchboard, sb, status_atom, "status")               // one line for `admin actors`
// The tunnel host.
CAF_ADD_ATOM(switchboard, sb, endpoint_resolved_atom, "resolved")  // endpoint registration finished
CAF_ADD_ATOM(switchboard, sb, relay_up_atom, "relayup")            // the relay session is ready
CAF_ADD_ATOM(switchboard, sb, relay_down_atom, "relaydown")        // the relay connection ended
CAF_ADD_ATOM(switchboard, sb, stream_opened_atom, "streamopen")
CAF_ADD_ATOM(switchboard, sb, stream_closed_atom, "streamclos")
CAF_ADD_ATOM(switchboard, sb, restart_atom, "restart")             // the backoff delay passed
CAF_ADD_ATOM(switchboard, sb, token_refreshed_atom, "refreshed")
CAF_ADD_ATOM(switchboard, sb, port_add_atom, "portadd")
CAF_ADD_ATOM(switchboard, sb, port_remove_atom, "portdel")
CAF_ADD_ATOM(switchboard, sb, children_atom, "children")           // the actors under a tunnel actor
// The relay.
CAF_ADD_ATOM(switchboard, sb, host_attached_atom, "hostattach")    // a host WebSocket joined its tunnel
CAF_ADD_ATOM(switchboard, sb, client_attached_atom, "cliattach")   // a client WebSocket joined its tunnel
CAF_ADD_ATOM(switchboard, sb, link_ready_atom, "linkready")        // a relay connection's SSH session is ready
CAF_ADD_ATOM(switchboard, sb, port_changed_atom, "portchange")     // a host forwards or stops forwarding
CAF_ADD_ATOM(switchboard, sb, link_closed_atom, "linkclosed")      // a relay connection ended
CAF_ADD_ATOM(switchboard, sb, tunnel_of_atom, "tunnelof")          // the tunnel actor of an id (made if new)
CAF_ADD_ATOM(switchboard, sb, host_version_atom, "hostver")        // the protocol of a tunnel's host
CAF_ADD_ATOM(switchboard, sb, tunnel_list_atom, "tunnellist")      // every tunnel actor of the relay
CAF_ADD_ATOM(switchboard, sb, close_all_atom, "closeall")          // drop every relay connection
CAF_ADD_ATOM(switchboard, sb, tunnel_idle_atom, "tunnelidle")      // a tunnel actor has no connection left

CAF_ADD_TYPE_ID(switchboard, (nlohmann::json))
CAF_ADD_TYPE_ID(switchboard, (sb::protocol::envelope))
CAF_ADD_TYPE_ID(switchboard, (sb::transport::sink_ptr))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::inbound_message))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::op_result))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::member))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::steady_time))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::client_info))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::session_info))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::presence_entry))
CAF_ADD_TYPE_ID(switchboard, (std::vector<sb::actors::presence_entry>))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::agent_page))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::presence_page))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::actor_status))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::node_stats))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::tunnel_info))
CAF_ADD_TYPE_ID(switchboard, (sb::protocol::agent_register_payload))
CAF_ADD_TYPE_ID(switchboard, (sb::protocol::agent_id_payload))
CAF_ADD_TYPE_ID(switchboard, (sb::protocol::agent_status_payload))
CAF_ADD_TYPE_ID(switchboard, (sb::protocol::route_request_payload))
CAF_ADD_TYPE_ID(switchboard, (sb::protocol::route_response_payload))
CAF_ADD_TYPE_ID(switchboard, (sb::tunnel::tunnel_error))
CAF_ADD_TYPE_ID(switchboard, (sb::tunnel::io::relay_outcome))
CAF_ADD_TYPE_ID(switchboard, (sb::tunnel::protocol_version))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::relay_endpoint_result))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::relay_tunnel_info))
CAF_ADD_TYPE_ID(switchboard, (std::optional<sb::tunnel::protocol_version>))
CAF_ADD_TYPE_ID(switchboard, (std::shared_ptr<sb::tunnel::io::relay_host_handle>))
CAF_ADD_TYPE_ID(switchboard, (std::shared_ptr<sb::tunnel::io::relay_client_handle>))
CAF_ADD_TYPE_ID(switchboard, (sb::cluster::kv_entry))
CAF_ADD_TYPE_ID(switchboard, (sb::cluster::message))
CAF_ADD_TYPE_ID(switchboard, (sb::cluster::result<std::string>))
CAF_ADD_TYPE_ID(switchboard, (sb::cluster::result<sb::cluster::kv_entry>))
CAF_ADD_TYPE_ID(switchboard, (sb::cluster::result<std::uint64_t>))
CAF_ADD_TYPE_ID(switchboard, (sb::cluster::link_state))
CAF_ADD_TYPE_ID(switchboard, (sb::actors::cluster_view))

CAF_END_TYPE_ID_BLOCK(switchboard)

// Local-only messages: these never cross a node boundary, so they need no serializer.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(nlohmann::json)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::protocol::envelope)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::transport::sink_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::inbound_message)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::op_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::member)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::steady_time)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::client_info)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::session_info)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::presence_entry)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<sb::actors::presence_entry>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::agent_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::presence_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::actor_status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::node_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::tunnel_info)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::protocol::agent_register_payload)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::protocol::agent_id_payload)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::protocol::agent_status_payload)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::protocol::route_request_payload)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::protocol::route_response_payload)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::tunnel::tunnel_error)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::tunnel::io::relay_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::tunnel::protocol_version)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::relay_endpoint_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::relay_tunnel_info)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::optional<sb::tunnel::protocol_version>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<sb::tunnel::io::relay_host_handle>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<sb::tunnel::io::relay_client_handle>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::cluster::kv_entry)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::cluster::message)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::cluster::result<std::string>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::cluster::result<sb::cluster::kv_entry>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::cluster::result<std::uint64_t>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::cluster::link_state)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::cluster_view)

// -- typed interfaces ---------------------------------------------------------------------------------------

namespace sb::actors {

template <class... Ts>
using reacts_to = caf::reacts_to<Ts...>;
template <class... Ts>
using replies_to = caf::replies_to<Ts...>;

/// The node's agents and the requests in flight to them (actors/agent_registry.cpp).
using registry_actor = caf::typed_actor<
    replies_to<register_atom, std::string, transport::sink_ptr, protocol::agent_register_payload>::with<op_result>,
    replies_to<unregister_atom, std::string, protocol::agent_id_payload>::with<op_result>,
    replies_to<agent_status_atom, std::string, protocol::agent_status_payload>::with<op_result>,
    // requester, its connection, the request's message id: answered on the connection, not to the sender
    reacts_to<route_request_atom, std::string, transport::sink_ptr, std::string, protocol::route_request_payload>,
    replies_to<route_response_atom, std::string, protocol::route_response_payload>::with<op_result>,
    reacts_to<route_timeout_atom, std::string>,  // request id
    reacts_to<sweep_atom>,                       //
    reacts_to<client_gone_atom, std::string>,    //
    replies_to<agent_page_atom, std::string, std::uint64_t>::with<agent_page>,  // cursor, limit
    reacts_to<agent_changed_atom, cluster::kv_entry>,                  // the agents bucket's watch
    reacts_to<route_in_atom, cluster::message>,                        // for an agent held here
    reacts_to<route_reply_atom, std::string, cluster::result<std::string>>,  // request id, answer
    reacts_to<node_lost_atom, std::string>,                            // its agents go offline
    reacts_to<agents_synced_atom>,                                     // the watch delivered every live record
    reacts_to<resync_atom>,                                            // put the agents here into KV again
    reacts_to<resync_failed_atom>,                                     // one of its writes failed
    replies_to<status_atom>::with<actor_status>>;

/// One per WebSocket connection (actors/client.cpp).
using client_actor = caf::typed_actor<                         //
    reacts_to<inbound_message>,                                  // a frame from the socket, decoded
    reacts_to<connection_closed_atom, std::uint16_t>,            // the socket closed with this code
    reacts_to<auth_deadline_atom>,                               //
    reacts_to<kick_atom, std::string>,                           // reason
    reacts_to<drain_atom>,                                       //
    reacts_to<registry_atom, registry_actor>,                    // the registry was restarted: use this one
    replies_to<info_atom>::with<client_info>,                    //
    replies_to<status_atom>::with<actor_status>>;

struct session_joined;

/// One per session with members on this node (actors/session.cpp): the node's part of a cluster-wide
/// session whose record lives in the sessions bucket. Every operation names the member it is for.
using session_actor = caf::typed_actor<                                                     //
    replies_to<create_atom, nlohmann::json, member>::with<session_joined>,                    // metadata
    replies_to<join_atom, member>::with<session_joined>,                                      //
    replies_to<leave_atom, std::string>::with<op_result>,                                     // client id
    replies_to<patch_atom, std::string, nlohmann::json>::with<op_result>,                     // client, patch
    replies_to<broadcast_atom, std::string, protocol::envelope, steady_time>::with<op_result>,  //
    reacts_to<presence_update_atom, std::string, nlohmann::json>,                             // client, fields
    reacts_to<client_gone_atom, std::string>,                                                 //
    reacts_to<node_lost_atom, std::string>,                      // its members leave the session
    reacts_to<resync_atom>,                                      // reconcile the record with the members here
    reacts_to<kv_read_atom, std::uint64_t, cluster::result<cluster::kv_entry>>,  // op, what was read
    reacts_to<kv_written_atom, std::uint64_t, cluster::result<std::uint64_t>>,   // op, new revision
    reacts_to<record_changed_atom, cluster::kv_entry>,           // another node changed the record
    reacts_to<fanout_atom, std::string>,                         // a frame from another node
    replies_to<info_atom>::with<session_info>,                                                //
    replies_to<status_atom>::with<actor_status>>;

/// A join's answer: the session's description for the client, and the session to talk to from now on.
struct session_joined {
  op_result result;
  session_actor session;  // set when the join succeeded
};

/// Whatever can be listed by `admin actors`: every actor kind answers status_atom, so any handle converts.
using status_actor = caf::typed_actor<replies_to<status_atom>::with<actor_status>>;

/// A page of one of the supervisor's indexes, in id order; `more` is the last id when entries follow.
template <class Handle>
struct index_page {
  std::vector<std::pair<std::string, Handle>> entries;
  std::size_t total = 0;
  std::optional<std::string> more;
};
using client_page = index_page<client_actor>;
using session_page = index_page<session_actor>;

/// The gateway supervisor (actors/supervisor.cpp): the indexes, session creation, cleanup of what ends.
/// Session operations for a session the caller is not in yet come here and are handed on.
using gateway_supervisor_actor = caf::typed_actor<
    reacts_to<client_started_atom, std::string, client_actor>,
    reacts_to<record_changed_atom, cluster::kv_entry>,    // the sessions bucket's watch
    reacts_to<presence_changed_atom, cluster::kv_entry>,  // the presence bucket's watch
    reacts_to<records_synced_atom>,                       // the sessions watch delivered every live record
    reacts_to<presence_synced_atom>,                      // the presence watch delivered every live entry
    reacts_to<node_lost_atom, std::string>,
    reacts_to<resync_atom>,                               // the bus is back: presence, sessions, agents
    reacts_to<resync_failed_atom>,                        // one of its writes failed: resync again later
    reacts_to<presence_atom, std::string, presence_entry>,
    replies_to<presence_list_atom, std::uint64_t, std::uint32_t>::with<presence_page>,  // after, limit
    reacts_to<client_gone_atom, std::string>,
    replies_to<create_atom, std::string, nlohmann::json, member>::with<session_joined>,  // id, metadata
    replies_to<join_atom, std::string, member>::with<session_joined>,
    replies_to<leave_atom, std::string, std::string>::with<op_result>,  // session, client
    replies_to<patch_atom, std::string, std::string, nlohmann::json>::with<op_result>,
    replies_to<broadcast_atom, std::string, std::string, protocol::envelope, steady_time>::with<op_result>,
    replies_to<client_page_atom, std::string, std::uint64_t>::with<client_page>,
    replies_to<session_page_atom, std::string, std::uint64_t>::with<session_page>,
    replies_to<find_client_atom, std::string>::with<client_page>,
    replies_to<find_session_atom, std::string>::with<session_page>,
    replies_to<registry_atom>::with<registry_actor>,
    replies_to<node_stats_atom>::with<node_stats>,
    replies_to<kick_atom, std::string, std::string>::with<bool>,  // client id, reason: false if unknown
    replies_to<drain_atom>::with<std::size_t>,       // clients told to go
    replies_to<status_atom>::with<actor_status>>;

/// The cluster's members as this node sees them (actors/cluster_members.cpp): heartbeats out and in, and
/// the verdict on nodes that went silent.
using cluster_members_actor = caf::typed_actor<
    reacts_to<heartbeat_atom, std::string>,  // another node's heartbeat, as received
    reacts_to<heartbeat_tick_atom>,
    reacts_to<bus_state_atom, cluster::link_state>,
    replies_to<cluster_view_atom>::with<cluster_view>,
    replies_to<status_atom>::with<actor_status>>;

// -- the tunnel host (actors/tunnel_host.cpp) --

/// One forwarded client stream.
using tunnel_stream_actor = caf::typed_actor<                          //
    reacts_to<stream_closed_atom, std::uint64_t, std::uint64_t>,  // bytes in, out
    replies_to<status_atom>::with<actor_status>>;

/// One relay connection attempt; it reports to its supervisor and quits when the attempt ends.
using tunnel_connection_actor = caf::typed_actor<
    reacts_to<endpoint_resolved_atom, relay_endpoint_result>,
    reacts_to<relay_up_atom, tunnel::protocol_version>,
    reacts_to<relay_down_atom, tunnel::io::relay_outcome>,
    reacts_to<stream_opened_atom, std::uint64_t, std::uint16_t>,                // stream, port
    reacts_to<stream_closed_atom, std::uint64_t, std::uint64_t, std::uint64_t>,  // stream, bytes in, out
    reacts_to<port_add_atom, std::uint16_t>,
    reacts_to<port_remove_atom, std::uint16_t>,
    replies_to<children_atom>::with<std::vector<status_actor>>,
    replies_to<status_atom>::with<actor_status>>;

/// Owns the tunnel's status, ports and retry policy; restarts the connection actor with backoff.
using tunnel_supervisor_actor = caf::typed_actor<
    reacts_to<relay_up_atom, tunnel::protocol_version, std::string>,  // version, relay URI
    reacts_to<relay_down_atom, tunnel::tunnel_error>,
    reacts_to<restart_atom>,
    reacts_to<token_refreshed_atom, std::string, std::string>,  // token (empty: failed), error
    reacts_to<port_add_atom, std::uint16_t>,
    reacts_to<port_remove_atom, std::uint16_t>,
    replies_to<info_atom>::with<tunnel_info>,
    replies_to<children_atom>::with<std::vector<status_actor>>,
    replies_to<status_atom>::with<actor_status>>;

// -- the relay (actors/relay.cpp) --

using relay_host_ref = std::shared_ptr<tunnel::io::relay_host_handle>;
using relay_client_ref = std::shared_ptr<tunnel::io::relay_client_handle>;
using optional_version = std::optional<tunnel::protocol_version>;

/// One relay WebSocket: what its connection reported, and its line in `admin actors`. It quits when the
/// connection ends.
using relay_connection_actor = caf::typed_actor<
    reacts_to<link_ready_atom>,
    reacts_to<port_changed_atom, std::uint32_t, std::string, bool>,  // port, address, added
    reacts_to<link_closed_atom, std::uint32_t, std::string>,         // SSH reason, message
    replies_to<status_atom>::with<actor_status>>;

/// One tunnel: its host and its clients, the ports the host forwards. It shows every client the tunnel as
/// it changes, and quits when neither a host nor a client is left.
using relay_tunnel_actor = caf::typed_actor<
    reacts_to<host_attached_atom, relay_host_ref, relay_connection_actor>,
    reacts_to<client_attached_atom, relay_client_ref, relay_connection_actor>,
    reacts_to<link_ready_atom, std::uint64_t>,                                       // connection id
    reacts_to<port_changed_atom, std::uint64_t, std::uint32_t, std::string, bool>,  // host id, port, ...
    reacts_to<link_closed_atom, std::uint64_t>,                                      // connection id
    replies_to<host_version_atom>::with<optional_version>,
    reacts_to<close_all_atom>,
    replies_to<info_atom>::with<relay_tunnel_info>,
    replies_to<children_atom>::with<std::vector<status_actor>>,
    replies_to<status_atom>::with<actor_status>>;

using relay_tunnel_page = index_page<relay_tunnel_actor>;

/// The relay's tunnel actors by tunnel id.
using relay_directory_actor = caf::typed_actor<
    replies_to<tunnel_of_atom, std::string>::with<relay_tunnel_actor>,
    replies_to<host_version_atom, std::string>::with<optional_version>,
    replies_to<tunnel_list_atom>::with<relay_tunnel_page>,
    reacts_to<tunnel_idle_atom, std::string, std::uint64_t>,  // tunnel id, attachments it has seen
    replies_to<close_all_atom>::with<std::size_t>,            // tunnels told
    replies_to<status_atom>::with<actor_status>>;

}  // namespace sb::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::relay_connection_actor)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::relay_tunnel_actor)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::relay_tunnel_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::session_joined)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::client_actor)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::registry_actor)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::status_actor)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<sb::actors::status_actor>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::client_page)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sb::actors::session_page)
