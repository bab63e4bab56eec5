// ModelBuildContext::expert_layouts: where an architecture's experts come from, a packed
// file's index or its own search of the checkpoint.
#include "core/error.h"
#include "format/packed_format.h"
#include "model/model_registry.h"

namespace mst {

std::vector<ExpertLayout> ModelBuildContext::expert_layouts(int64_t layer, const ExpertLocator &locate) const {
    const PackedContents *packed = checkpoint.packed();
    if (!packed) return locate();
    if (layer < 0 || size_t(layer) >= packed->experts.size() || packed->experts[size_t(layer)].empty())
        fail(MST_ERR_BAD_FORMAT, "{}: the packed file holds no experts for layer {}, which has routed experts",
             checkpoint.dir(), layer);
    const std::vector<ExpertLayout> &layouts = packed->experts[size_t(layer)];
    for (size_t e = 1; e < layouts.size(); ++e)
        if (layouts[e].parts.size() != layouts[0].parts.size())
            fail(MST_ERR_BAD_FORMAT, "{}: layer {} expert {} has {} parts, expert 0 has {}", checkpoint.dir(), layer, e,
                 layouts[e].parts.size(), layouts[0].parts.size());
    return layouts;
}

}  // namespace mst
