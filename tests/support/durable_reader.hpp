#pragma once
// A durable JetStream consumer on KILN_EVENTS outside kiln, as an auditor
// would run one: its position lives in the server, so a new process resumes
// from it.
#include <catch2/catch.hpp>
#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace kiln::test {

// On project app's events (kiln.evt.app.>).
class durable_reader {
 public:
  durable_reader(const std::string& url, const char* durable) : durable_(durable) {
    REQUIRE(natsConnection_ConnectTo(&nc_, url.c_str()) == NATS_OK);
    REQUIRE(natsConnection_JetStream(&js_, nc_, nullptr) == NATS_OK);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.FilterSubject = "kiln.evt.app.>";
    cc.AckPolicy = js_AckExplicit;
    jsConsumerInfo* ci = nullptr;
    js_AddConsumer(&ci, js_, "KILN_EVENTS", &cc, nullptr, nullptr);  // exists already: fine
    jsConsumerInfo_Destroy(ci);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = "KILN_EVENTS";
    so.Consumer = durable;
    REQUIRE(js_PullSubscribe(&sub_, js_, "kiln.evt.app.>", durable, nullptr, &so, nullptr) == NATS_OK);
  }
  ~durable_reader() {
    natsSubscription_Destroy(sub_);  // not unsubscribed: the consumer stays
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }
  // Up to `n` events (subject and commit JSON), each acknowledged.
  std::vector<std::pair<std::string, nlohmann::json>> fetch(int n) {
    std::vector<std::pair<std::string, nlohmann::json>> out;
    natsMsgList list{};
    if (natsSubscription_Fetch(&list, sub_, n, 2000, nullptr) != NATS_OK)
      return out;
    for (int i = 0; i < list.Count; ++i) {
      auto m = list.Msgs[i];
      out.emplace_back(natsMsg_GetSubject(m),
                       nlohmann::json::parse(std::string{natsMsg_GetData(m),
                                               static_cast<std::size_t>(natsMsg_GetDataLength(m))}));
      natsMsg_Ack(m, nullptr);
    }
    natsMsgList_Destroy(&list);
    return out;
  }

 private:
  std::string durable_;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  natsSubscription* sub_ = nullptr;
};

} // namespace kiln::test
