#pragma once
// "Did you mean …?" for strict YAML readers (the config and simulator
// scenarios): the allowed word closest to a misspelt one.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>

namespace importwatch::core {

/// Optimal string alignment distance: Levenshtein plus adjacent swaps.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate close enough to `word` to be a typo of it ("intervall" ->
/// "interval"), not merely a different short word; nullopt when none is.
template <class Range>
std::optional<std::string> closest_match(std::string_view word, Range const& candidates) {
    std::size_t const limit = std::max<std::size_t>(2, std::min<std::size_t>(3, word.size() / 3));
    std::optional<std::string> best;
    std::size_t best_distance = limit + 1;
    for (std::string_view candidate : candidates) {
        std::size_t const d = edit_distance(word, candidate);
        if (d < best_distance && d < candidate.size() && d < word.size()) {
            best_distance = d;
            best = std::string(candidate);
        }
    }
    return best;
}

} // namespace importwatch::core
