#include "convert/shape_discovery.h"

#include <algorithm>
#include <deque>

#include "core/error.h"
#include "model/model_registry.h"
#include "storage/storage_tier.h"

namespace mst {
namespace {

// A checkpoint with no bytes: require(name, shape) creates the tensor on first use, at
// its own place in an address space of its own (so expert parts, which are byte ranges,
// can be told from resident tensors afterwards); find() knows only what was required.
class InventingCheckpoint final : public Checkpoint {
public:
    const TensorInfo *find(std::string_view name) const override {
        const auto it = by_name_.find(name);
        return it == by_name_.end() ? nullptr : &tensors_[it->second];
    }

    const TensorInfo &require(std::string_view name, std::initializer_list<int64_t> shape) const override {
        if (const TensorInfo *known = find(name)) {
            if (!std::equal(known->shape.begin(), known->shape.end(), shape.begin(), shape.end()))
                fail(MST_ERR_INTERNAL, "the architecture asked for tensor '{}' as {} and as {}", name,
                     shape_to_string(known->shape), shape_to_string(std::vector<int64_t>(shape)));
            return *known;
        }
        TensorInfo t;
        t.name = std::string(name);
        t.dtype = DType::BF16;
        t.shape.assign(shape.begin(), shape.end());
        t.file_index = 0;
        t.offset = next_offset_;
        t.nbytes = uint64_t(t.numel()) * dtype_size(DType::BF16);
        next_offset_ += t.nbytes;
        by_name_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));  // a deque: references handed out stay valid
        return tensors_.back();
    }

    // The buffers stay unwritten: nothing is computed while a model is built.
    void read(const TensorInfo &, void *) const override {}
    std::vector<float> read_f32(const TensorInfo &t) const override { return std::vector<float>(size_t(t.numel()), 0.0f); }

    const std::deque<TensorInfo> &invented() const { return tensors_; }

private:
    mutable std::deque<TensorInfo> tensors_;
    mutable std::map<std::string, size_t, std::less<>> by_name_;
    mutable uint64_t next_offset_ = 0;
};

struct Range {
    uint64_t begin, end;
};

}  // namespace

DiscoveredShapes discover_shapes(const ModelConfig &config) {
    InventingCheckpoint checkpoint;
    DiscoveredShapes shapes;
    std::map<std::string, WeightUse> uses;
    {
        const std::unique_ptr<Backend> backend = create_backend("cpu", 1);
        ExpertStoreFactory capture = [&](std::vector<std::vector<ExpertLayout>> layouts) {
            shapes.experts = layouts;
            return std::make_unique<ExpertStore>(open_storage({}, StorageOptions{}), std::move(layouts), 0, "none");
        };
        WeightUseRecorder record = [&](const std::string &name, WeightUse use) {
            const auto [it, inserted] = uses.emplace(name, use);
            if (!inserted && use == WeightUse::KeepStored) it->second = WeightUse::KeepStored;
        };
        ModelBuildContext ctx{config, checkpoint, *backend, capture, record};
        build_model(ctx);  // built only to see what it asks for, and dropped
    }

    // Tensors whose bytes hold expert parts belong to the expert section.
    std::vector<Range> parts;
    for (const auto &layer : shapes.experts)
        for (const ExpertLayout &e : layer)
            for (const ExpertMatrix &m : e.parts) parts.push_back({m.offset, m.offset + m.nbytes()});
    std::sort(parts.begin(), parts.end(), [](const Range &a, const Range &b) { return a.begin < b.begin; });
    const auto holds_expert = [&](const TensorInfo &t) {
        // The first part ending after the tensor's start; tensors never overlap each other.
        auto it = std::lower_bound(parts.begin(), parts.end(), t.offset,
                                   [](const Range &r, uint64_t v) { return r.begin < v; });
        if (it != parts.begin() && std::prev(it)->end > t.offset) return true;
        return it != parts.end() && it->begin < t.offset + t.nbytes;
    };
    for (const TensorInfo &t : checkpoint.invented()) {
        if (t.nbytes > 0 && holds_expert(t)) continue;
        DiscoveredTensor d{t, std::nullopt};
        if (const auto it = uses.find(t.name); it != uses.end()) d.use = it->second;
        shapes.resident.push_back(std::move(d));
    }
    return shapes;
}

}  // namespace mst
