#pragma once
// Bounds shared by the admin listings (PROTOCOL.md "Admin socket": agents, clients, sessions). A listing is
// paged so that one answer stays bounded however many records exist: at most `limit` entries after `cursor`
// (the `next` of the page before), and fewer when the entries' bytes reach page_byte_budget.
#include <cstddef>
#include <cstdint>

namespace sb::actors {

inline constexpr std::uint64_t default_page_limit = 1000;
inline constexpr std::uint64_t max_page_limit = 10000;
/// A page stays well below admin_call's 4 MiB read buffer (transport/admin_socket.cpp), while one agent
/// whose metadata fills a default maxPayload (1 MiB) still fits whole.
inline constexpr std::size_t page_byte_budget = 2 * 1024 * 1024;
/// An entry larger than this is listed by its id and size alone (`truncated: true`, `bytes`).
inline constexpr std::size_t max_entry_bytes = page_byte_budget;

}  // namespace sb::actors
